# Runs the conformance/cng GoogleTest programs natively on Windows against the agent the site file
# names, with the environment the Wine runner gives them (conformance/cng/run-wine-suite.sh):
# SIGNUM_AGENT_TCP, SIGNUM_AGENT_SECRET_FILE, SIGNUM_CNG_OUTPUT_DIR (one per program), SIGNUM_CNG_BIN_DIR,
# SIGNUM_CNG_ROOT_CA. Every signature a program writes goes to OutDir\<program>\manifest.tsv and is
# verified afterwards with native OpenSSL in WSL (Windows is the caller, never the judge).
# The NCrypt API suite runs twice: through the router it was built with (bin\ncrypt-router, as under
# Wine) and alone, so that Microsoft's ncrypt.dll dispatches to the registered KSP.
param(
  [Parameter(Mandatory)][string]$BuildDir,
  [Parameter(Mandatory)][string]$SiteFile,
  [Parameter(Mandatory)][string]$OutDir
)
$ErrorActionPreference = 'Stop'
$bin = Join-Path (Resolve-Path $BuildDir) 'bin'
$site = Get-Content -Raw $SiteFile | ConvertFrom-Json
New-Item -ItemType Directory -Force $OutDir | Out-Null
$OutDir = (Resolve-Path $OutDir).Path
$env:SIGNUM_AGENT_TCP = $site.env.SIGNUM_AGENT_TCP
$env:SIGNUM_AGENT_SECRET_FILE = $site.env.SIGNUM_AGENT_SECRET_FILE
$env:SIGNUM_CNG_BIN_DIR = $bin
$env:SIGNUM_CNG_ROOT_CA = $site.root_ca

$programs = @(Get-ChildItem -Path $bin -Filter 'signum_cng_*_test.exe' | ForEach-Object { @{ Name = $_.BaseName; Exe = $_.FullName } })
$router = Get-ChildItem -Path (Join-Path $bin 'ncrypt-router') -Filter 'signum_cng_*_test.exe' -ErrorAction SilentlyContinue
foreach ($exe in $router) {
  $programs += @{ Name = "$($exe.BaseName)-router"; Exe = $exe.FullName }
  # Alone in a directory of its own: no ncrypt.dll beside it, so Windows' ncrypt.dll is loaded.
  $alone = Join-Path $OutDir "microsoft-ncrypt"
  New-Item -ItemType Directory -Force $alone | Out-Null
  Copy-Item $exe.FullName $alone -Force
  $programs += @{ Name = "$($exe.BaseName)-microsoft-ncrypt"; Exe = (Join-Path $alone $exe.Name) }
}
if (-not $programs) { throw "no signum_cng_*_test.exe in $bin" }

$failed = @()
foreach ($program in $programs) {
  $out = Join-Path $OutDir $program.Name
  New-Item -ItemType Directory -Force $out | Out-Null
  $env:SIGNUM_CNG_OUTPUT_DIR = $out
  "== $($program.Name)"
  & $program.Exe "--gtest_output=xml:$out\junit.xml"
  if ($LASTEXITCODE) { $failed += "$($program.Name) (exit $LASTEXITCODE)" }
}
if ($failed) { throw "failed: $($failed -join ', ')" }
"all $($programs.Count) programs passed; manifests under $OutDir"
