# Sets up a Windows machine the way every Windows row of matrix.yaml assumes (the CI job runs it;
# a developer can too, as administrator): the demo root in LocalMachine\Root, signumksp.dll copied
# to System32 and registered as the KSP, signumcsp.dll registered as the CSP, both configured for
# the agent's loopback TCP endpoint, and the agent's certificates in <Store>\My bound to the KSP.
# Everything comes from signum-util.exe of BuildDir\bin and the site file written in WSL by
# export-site.py (docs/windows.md). -Uninstall undoes it.
param(
  [Parameter(Mandatory)][string]$BuildDir,
  [Parameter(Mandatory)][string]$SiteFile,
  [ValidateSet('CurrentUser', 'LocalMachine')][string]$Store = 'CurrentUser',
  [switch]$Uninstall
)
$ErrorActionPreference = 'Stop'
$bin = Join-Path (Resolve-Path $BuildDir) 'bin'
$util = Join-Path $bin 'signum-util.exe'
$site = Get-Content -Raw $SiteFile | ConvertFrom-Json
foreach ($file in $util, (Join-Path $bin 'signumksp.dll'), (Join-Path $bin 'signumcsp.dll')) {
  if (-not (Test-Path $file)) { throw "$file is not built (docs/windows.md: building with MSYS2)" }
}
function Invoke-Util {
  "> signum-util $args"
  & $util @args
  if ($LASTEXITCODE) { throw "signum-util $args exited $LASTEXITCODE" }
}
$root = [System.Security.Cryptography.X509Certificates.X509Certificate2]::new($site.root_ca_der)

if ($Uninstall) {
  Invoke-Util windows remove-certificates --provider ksp --store $Store
  Invoke-Util windows unregister ksp
  Invoke-Util windows unregister csp
  Remove-Item -ErrorAction SilentlyContinue "Cert:\LocalMachine\Root\$($root.Thumbprint)"
  Remove-Item -ErrorAction SilentlyContinue (Join-Path $env:SystemRoot 'System32\signumksp.dll')
  return
}

# Trust for the tools' own verifiers (signtool verify /pa, Get-AuthenticodeSignature). Not
# CurrentUser\Root: adding there asks the user in a dialog.
Import-Certificate -FilePath $site.root_ca_der -CertStoreLocation Cert:\LocalMachine\Root | Out-Null
"demo root $($root.Subject) ($($root.Thumbprint)) in LocalMachine\Root"

# CNG loads a KSP by the file name registered as its Image, from System32.
$built = Join-Path $bin 'signumksp.dll'
$installed = Join-Path $env:SystemRoot 'System32\signumksp.dll'
# (A second run must not try to overwrite a DLL some process still has loaded when it is the same.)
if (-not (Test-Path $installed) -or (Get-FileHash $built).Hash -ne (Get-FileHash $installed).Hash) {
  Copy-Item $built $installed -Force
}
Invoke-Util windows register ksp --dll signumksp.dll
# CryptoAPI loads a CSP from the fully qualified Image Path.
Invoke-Util windows register csp --dll (Join-Path $bin 'signumcsp.dll')
Invoke-Util windows configure --agent-tcp $site.env.SIGNUM_AGENT_TCP --secret-file $site.env.SIGNUM_AGENT_SECRET_FILE
Invoke-Util windows install-certificates --provider ksp --store $Store
Invoke-Util windows show
Invoke-Util status
Invoke-Util list

# What the tools will see, checked by Windows itself.
# certutil -csplist enumerates CryptoAPI CSPs and CNG KSPs (NCryptEnumStorageProviders).
$providers = certutil -csplist | Out-String
foreach ($name in 'Signum Cryptographic Service Provider', 'Signum Enhanced RSA and AES Cryptographic Provider',
                  'Signum Key Storage Provider') {
  if ($providers -notmatch [regex]::Escape($name)) { throw "certutil -csplist does not list $name" }
  "certutil -csplist: $name"
}
foreach ($key in $site.keys.signum.PSObject.Properties) {
  if ($key.Name -notlike 'rsa-*') { continue }  # the Windows providers are RSA-only
  $thumbprint = $key.Value.sha1
  $cert = Get-Item "Cert:\$Store\My\$thumbprint" -ErrorAction SilentlyContinue
  if (-not $cert) { throw "$($key.Name): $thumbprint is not in $Store\My" }
  if (-not $cert.HasPrivateKey) { throw "$($key.Name): $thumbprint in $Store\My has no key binding" }
  "$($key.Name): $Store\My\$thumbprint bound to a private key"
}
