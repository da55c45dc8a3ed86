# The native Windows agent (signum-agent.exe, TCP only, Schannel to the server) in front of the WSL
# deployment's signum-server, serving the providers as it will in production (docs/windows.md,
# "The native agent"). The Wine run of the same (conformance/cng: signum_cng_windows_agent_wine)
# is its rehearsal; this is the real thing:
#  1. the server's port reachable from Windows on 127.0.0.1 (Connect-WslAgent.ps1 -Port: WSL's
#     localhost forwarding, else the relay), as the agent's certificate check needs 127.0.0.1;
#  2. signum-agent.exe started with the site's server URL, CA and API token (site.json
#     "native_agent", export-site.py), its secret and port files under OutDir\native-agent;
#  3. signum-util.exe status (exit 0: agent and server reachable) and list through it;
#  4. the KSP and CSP conformance programs against it, signatures to
#     OutDir\native-agent-<program>\manifest.tsv (verified by OpenSSL in WSL like the others);
#  5. its log must show the signatures; it is stopped at the end.
param(
  [Parameter(Mandatory)][string]$BuildDir,
  [Parameter(Mandatory)][string]$SiteFile,
  [Parameter(Mandatory)][string]$OutDir,
  [int]$TimeoutSeconds = 60
)
$ErrorActionPreference = 'Stop'
$bin = Join-Path (Resolve-Path $BuildDir) 'bin'
$site = Get-Content -Raw $SiteFile | ConvertFrom-Json
$native = $site.native_agent
if (-not $native) { throw "$SiteFile has no native_agent section (written by export-site.py)" }
$agentExe = Join-Path $bin 'signum-agent.exe'
$util = Join-Path $bin 'signum-util.exe'
foreach ($file in @($agentExe, $util)) { if (-not (Test-Path $file)) { throw "$file is not built" } }

# 1
$serverPort = ([Uri]$native.server_url).Port
& (Join-Path $PSScriptRoot 'Connect-WslAgent.ps1') -SiteFile $SiteFile -Port $serverPort

# 2
New-Item -ItemType Directory -Force $OutDir | Out-Null
$OutDir = (Resolve-Path $OutDir).Path
$run = Join-Path $OutDir 'native-agent'
New-Item -ItemType Directory -Force $run | Out-Null
$portFile = Join-Path $run 'agent.port'
$secretFile = Join-Path $run 'agent.secret'
$log = Join-Path $run 'agent.log'
Remove-Item -ErrorAction SilentlyContinue $portFile, $log
$env:SIGNUM_SERVER_URL = $native.server_url
$env:SIGNUM_TLS_TRUSTED_CA = $native.ca_file
$env:SIGNUM_TOKEN_FILE = $native.token_file
$env:SIGNUM_AGENT_SOCKET = 'off'
$env:SIGNUM_AGENT_TCP = '127.0.0.1:0'
$env:SIGNUM_AGENT_SECRET_FILE = $secretFile
$env:SIGNUM_AGENT_PORT_FILE = $portFile
$env:SIGNUM_AGENTID = "signum-agent.exe@$env:COMPUTERNAME"
$agent = Start-Process -PassThru -NoNewWindow -FilePath $agentExe -ArgumentList '--log-file', $log `
  -RedirectStandardOutput (Join-Path $run 'agent.out') -RedirectStandardError (Join-Path $run 'agent.err')
try {
  $deadline = (Get-Date).AddSeconds($TimeoutSeconds)
  while (-not (Test-Path $portFile) -and -not $agent.HasExited -and (Get-Date) -lt $deadline) {
    Start-Sleep -Milliseconds 500
  }
  if (-not (Test-Path $portFile)) {
    Get-Content -ErrorAction SilentlyContinue $log, (Join-Path $run 'agent.err') | Write-Host
    throw "signum-agent.exe is not serving after $TimeoutSeconds s"
  }
  $port = (Get-Content -Raw $portFile).Trim()
  "signum-agent.exe (PID $($agent.Id)) serving on 127.0.0.1:$port, server $($native.server_url)"

  # 3
  & $util --tcp "127.0.0.1:$port" --secret-file $secretFile status
  if ($LASTEXITCODE) { throw "signum-util status through the native agent exited $LASTEXITCODE" }
  & $util --tcp "127.0.0.1:$port" --secret-file $secretFile list
  if ($LASTEXITCODE) { throw "signum-util list through the native agent exited $LASTEXITCODE" }

  # 4
  $env:SIGNUM_AGENT_TCP = "127.0.0.1:$port"
  $env:SIGNUM_CNG_BIN_DIR = $bin
  $env:SIGNUM_CNG_ROOT_CA = $site.root_ca
  $failed = @()
  foreach ($name in @('signum_cng_ksp_table_test', 'signum_cng_csp_test')) {
    $out = Join-Path $OutDir "native-agent-$name"
    New-Item -ItemType Directory -Force $out | Out-Null
    $env:SIGNUM_CNG_OUTPUT_DIR = $out
    "== $name through the native agent"
    & (Join-Path $bin "$name.exe") "--gtest_output=xml:$out\junit.xml"
    if ($LASTEXITCODE) { $failed += "$name (exit $LASTEXITCODE)" }
    if (-not (Test-Path (Join-Path $out 'manifest.tsv'))) { $failed += "$name (no manifest.tsv)" }
  }
  if ($failed) { throw "through the native agent, failed: $($failed -join ', ')" }

  # 5
  $signed = @(Select-String -Path $log -SimpleMatch 'signed with').Count
  if (-not $signed) { throw "signum-agent.exe logged no signature: the programs did not go through it" }
  "signum-agent.exe served $signed signature(s); manifests under $OutDir\native-agent-*"
} finally {
  if (-not $agent.HasExited) { Stop-Process -Id $agent.Id -Force }
}
