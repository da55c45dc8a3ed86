# For the Windows rows of matrix.yaml. Checks a signer certificate against the row environment: it
# must be $env:CERT (thumbprint $env:CERT_SHA1) and chain to $env:ROOT_CA alone - CustomRootTrust,
# so the machine's roots never count - with $env:CHAIN as the only intermediates. -Path takes the
# signer of an Authenticode-signed file (Get-AuthenticodeSignature); -Certificate a certificate a
# verifier extracted. -Hash (PE files only): the Authenticode PKCS#7 is read from the PE's
# certificate table, its signature checked by .NET's SignedCms (independently of signtool) and its
# digest algorithm must be -Hash (sha256 | sha384 | sha512).
param(
  [string]$Path,
  [System.Security.Cryptography.X509Certificates.X509Certificate2]$Certificate,
  [string]$Hash
)
$ErrorActionPreference = 'Stop'
$X509 = [System.Security.Cryptography.X509Certificates.X509Certificate2]

# The first WIN_CERTIFICATE of a PE file (IMAGE_DIRECTORY_ENTRY_SECURITY, a file offset): its PKCS#7.
function Get-PeSignedCms([string]$File) {
  $bytes = [IO.File]::ReadAllBytes((Resolve-Path -LiteralPath $File).ProviderPath)
  $pe = [BitConverter]::ToInt32($bytes, 0x3C)
  if ([BitConverter]::ToUInt32($bytes, $pe) -ne 0x4550) { throw "${File}: not a PE file" }
  $optional = $pe + 24
  $directories = $optional + $(if ([BitConverter]::ToUInt16($bytes, $optional) -eq 0x20B) { 112 } else { 96 })
  $offset = [BitConverter]::ToInt32($bytes, $directories + 4 * 8)
  $size = [BitConverter]::ToInt32($bytes, $directories + 4 * 8 + 4)
  if ($offset -le 0 -or $size -le 8) { throw "${File}: no certificate table" }
  $length = [BitConverter]::ToInt32($bytes, $offset)
  if ([BitConverter]::ToUInt16($bytes, $offset + 6) -ne 2) { throw "${File}: certificate table entry is not PKCS#7" }
  $blob = [byte[]]::new($length - 8)
  [Array]::Copy($bytes, $offset + 8, $blob, 0, $length - 8)
  $cms = [System.Security.Cryptography.Pkcs.SignedCms]::new()
  $cms.Decode($blob)
  $cms
}

if ($Hash) {
  $oids = @{ sha1 = '1.3.14.3.2.26'; sha256 = '2.16.840.1.101.3.4.2.1'; sha384 = '2.16.840.1.101.3.4.2.2'; sha512 = '2.16.840.1.101.3.4.2.3' }
  $cms = Get-PeSignedCms $Path
  $cms.CheckSignature($true)  # the signer's signature over the signed attributes, no trust decision
  $digest = $cms.SignerInfos[0].DigestAlgorithm.Value
  if ($digest -ne $oids[$Hash.ToLowerInvariant()]) { throw "${Path}: digest algorithm $digest, expected $Hash" }
  "${Path}: PKCS#7 signature verified by SignedCms, digest $Hash"
}
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
