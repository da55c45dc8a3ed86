# For the Windows rows of matrix.yaml (lead: place at interop/tools/windows/Test-SignerChain.ps1).
# Checks a signer certificate against the row environment: it must be $env:CERT (thumbprint
# $env:CERT_SHA1) and chain to $env:ROOT_CA alone - CustomRootTrust, so the machine's roots never
# count - with $env:CHAIN as the only intermediates. -Path takes the signer of an Authenticode-signed
# file (Get-AuthenticodeSignature); -Certificate a certificate a verifier extracted.
param(
  [string]$Path,
  [System.Security.Cryptography.X509Certificates.X509Certificate2]$Certificate
)
$ErrorActionPreference = 'Stop'
$X509 = [System.Security.Cryptography.X509Certificates.X509Certificate2]
if ($Path) {
  $signature = Get-AuthenticodeSignature -LiteralPath $Path
  if ($signature.Status -eq 'NotSigned' -or $signature.Status -eq 'HashMismatch') {
    throw "${Path}: $($signature.Status) $($signature.StatusMessage)"
  }
  $Certificate = $signature.SignerCertificate
}
if (-not $Certificate) { throw 'no signer certificate' }
$expected = $X509::new($env:CERT)
if ($Certificate.Thumbprint -ne $expected.Thumbprint -or $Certificate.Thumbprint -ne $env:CERT_SHA1.ToUpperInvariant()) {
  throw "signer $($Certificate.Thumbprint) ($($Certificate.Subject)) is not `$CERT ($($expected.Thumbprint))"
}
$chain = [System.Security.Cryptography.X509Certificates.X509Chain]::new()
$chain.ChainPolicy.TrustMode = [System.Security.Cryptography.X509Certificates.X509ChainTrustMode]::CustomRootTrust
$chain.ChainPolicy.RevocationMode = [System.Security.Cryptography.X509Certificates.X509RevocationMode]::NoCheck
[void]$chain.ChainPolicy.CustomTrustStore.Add($X509::new($env:ROOT_CA))
$chain.ChainPolicy.ExtraStore.ImportFromPemFile($env:CHAIN)
if (-not $chain.Build($Certificate)) {
  throw "no chain from $($Certificate.Subject) to `$ROOT_CA: $(($chain.ChainStatus | ForEach-Object StatusInformation) -join '; ')"
}
"signer $($Certificate.Subject) = `$CERT, chains to $($chain.ChainElements[$chain.ChainElements.Count - 1].Certificate.Subject)"
