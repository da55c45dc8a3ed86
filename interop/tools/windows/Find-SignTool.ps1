# Prints the directory of the newest x64 signtool.exe of the installed Windows SDKs (signtool is not
# on PATH by default). The CI job appends it to $GITHUB_PATH; locally: $env:PATH += ";$(& .\Find-SignTool.ps1)"
param([ValidateSet('x64', 'x86', 'arm64')][string]$Architecture = 'x64')
$ErrorActionPreference = 'Stop'
$kits = Join-Path ${env:ProgramFiles(x86)} 'Windows Kits\10\bin'
$found = Get-ChildItem -Path $kits -Filter signtool.exe -Recurse -ErrorAction SilentlyContinue |
  Where-Object { $_.Directory.Name -eq $Architecture -and $_.Directory.Parent.Name -match '^\d+\.\d+\.\d+\.\d+$' } |
  Sort-Object { [version]$_.Directory.Parent.Name } -Descending | Select-Object -First 1
if (-not $found) { throw "no $Architecture signtool.exe under $kits (install the Windows SDK signing tools)" }
$found.DirectoryName
