# Preflight of the Windows CI job (docs/windows.md): WSL runs the distribution as WSL 2 (the
# reference deployment needs a real Linux kernel: Unix sockets, /proc, SoftHSM2), and says which
# distribution and kernel it is. Fails with the reason otherwise. WSL 2 is only on windows-2025
# runners (runner-images PR #11242); a WSL 1 distribution would fail much later, less clearly.
param([string]$Distribution = '')  # default: WSL's default distribution (setup-wsl sets it)
$ErrorActionPreference = 'Stop'
$env:WSL_UTF8 = '1'  # wsl.exe writes UTF-16 to a pipe otherwise

Write-Host '> wsl --status'
wsl.exe --status | Write-Host
Write-Host '> wsl --list --verbose'
$list = @(wsl.exe --list --verbose | Where-Object { $_.Trim() })
$list | Write-Host
if ($LASTEXITCODE) { throw "wsl --list --verbose exited $LASTEXITCODE: is WSL installed?" }

# Lines after the header: "* Debian    Running   2" (the asterisk marks the default).
$entries = foreach ($line in $list | Select-Object -Skip 1) {
  if ($line -match '^\s*(\*)?\s*(\S+)\s+(\S+)\s+(\d+)\s*$') {
    [pscustomobject]@{ Default = [bool]$Matches[1]; Name = $Matches[2]; State = $Matches[3]; Version = $Matches[4] }
  }
}
$entry = if ($Distribution) { $entries | Where-Object Name -eq $Distribution } else { $entries | Where-Object Default }
if (-not $entry) {
  $wanted = if ($Distribution) { "distribution '$Distribution'" } else { 'default distribution' }
  throw "no $wanted in 'wsl --list --verbose' (above)"
}
if ($entry.Version -ne '2') {
  throw "distribution $($entry.Name) runs as WSL $($entry.Version), not WSL 2 (windows-2025 runners have WSL 2)"
}

$osRelease = wsl.exe -d $entry.Name --exec cat /etc/os-release | Select-String '^PRETTY_NAME='
$kernel = wsl.exe -d $entry.Name --exec uname -r
"WSL 2: distribution $($entry.Name) ($($osRelease -replace '^PRETTY_NAME=', '')), kernel $kernel"
