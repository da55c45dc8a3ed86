# Makes the agent of the WSL deployment reachable from Windows on 127.0.0.1:PORT, the loopback
# address the providers are configured with (site.json's SIGNUM_AGENT_TCP; docs/windows.md).
#
# 1. Directly: WSL 2 forwards a port bound to 127.0.0.1 in the distribution to Windows' localhost.
#    On hosted runners that forwarding is not documented, so it is tried, not assumed.
# 2. Fallback, when 127.0.0.1:PORT does not answer: a relay. The agent listens on the
#    distribution's loopback only, which Windows cannot reach, so socat in WSL listens on the
#    distribution's own address (eth0) and passes each connection to 127.0.0.1:PORT (the agent
#    still sees a loopback peer of its own user), and Windows forwards its 127.0.0.1:PORT there:
#      netsh interface portproxy add v4tov4 listenaddress=127.0.0.1 listenport=PORT
#          connectaddress=<WSL address> connectport=PORT
#    (needs an elevated shell, as runners are, and the IP Helper service). The providers keep
#    talking to 127.0.0.1, exactly as with the direct path.
# Prints which path works; fails with what was tried when neither does.
# -Port: another port of the deployment instead of the agent's, the same way (the server's, for the
# native Windows agent: Invoke-NativeAgent.ps1).
param(
  [Parameter(Mandatory)][string]$SiteFile,
  [int]$Port = 0,
  [string]$Distribution = '',  # default: WSL's default distribution
  [int]$TimeoutSeconds = 15
)
$ErrorActionPreference = 'Stop'
$env:WSL_UTF8 = '1'
$site = Get-Content -Raw $SiteFile | ConvertFrom-Json
$address, $port = $site.env.SIGNUM_AGENT_TCP -split ':'
if ($Port) { $address, $port = '127.0.0.1', "$Port" }
if ($address -ne '127.0.0.1' -or -not $port) {
  throw "SIGNUM_AGENT_TCP is '$($site.env.SIGNUM_AGENT_TCP)', expected 127.0.0.1:PORT (export-site.py)"
}
$wsl = if ($Distribution) { @('-d', $Distribution) } else { @() }

function Test-Loopback {
  # A TCP connect within 3 s; the agent's own handshake is left to the providers.
  $client = [Net.Sockets.TcpClient]::new()
  try { return $client.ConnectAsync('127.0.0.1', [int]$port).Wait(3000) -and $client.Connected }
  catch { return $false }
  finally { $client.Dispose() }
}

function Wait-Loopback {
  $deadline = (Get-Date).AddSeconds($TimeoutSeconds)
  do { if (Test-Loopback) { return $true }; Start-Sleep -Milliseconds 500 } while ((Get-Date) -lt $deadline)
  return $false
}

if (Wait-Loopback) {
  "127.0.0.1:$port reachable directly (WSL 2 localhost forwarding)"
  exit 0
}
Write-Host "127.0.0.1:$port does not answer from Windows: relaying through socat in WSL and netsh portproxy"

$wslAddress = (wsl.exe @wsl --exec hostname -I) -split '\s+' |
  Where-Object { $_ -match '^\d+\.\d+\.\d+\.\d+$' } | Select-Object -First 1
if (-not $wslAddress) { throw "no IPv4 address of the WSL distribution ('hostname -I' in WSL)" }
if (-not (wsl.exe @wsl --exec sh -c 'command -v socat')) {
  throw 'socat is not installed in WSL (the workflow installs it with setup-wsl)'
}
# Lives as long as this hidden wsl.exe, i.e. the job (like the agent beside it).
Start-Process -WindowStyle Hidden wsl.exe -ArgumentList ($wsl + @('--exec', 'socat',
  "TCP-LISTEN:$port,bind=$wslAddress,fork,reuseaddr", "TCP:127.0.0.1:$port"))
netsh interface portproxy add v4tov4 listenaddress=127.0.0.1 listenport=$port `
  connectaddress=$wslAddress connectport=$port | Write-Host
if ($LASTEXITCODE) { throw "netsh interface portproxy add exited $LASTEXITCODE (not elevated?)" }

if (Wait-Loopback) {
  "agent 127.0.0.1:$port reachable through netsh portproxy -> socat on $wslAddress`:$port in WSL"
  exit 0
}
netsh interface portproxy show v4tov4 | Write-Host
throw ("agent 127.0.0.1:$port unreachable from Windows both directly (WSL localhost forwarding) " +
       "and through portproxy -> socat on $wslAddress`:$port (docs/windows.md)")
