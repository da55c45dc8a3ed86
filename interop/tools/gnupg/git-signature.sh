#!/bin/bash
# Splits a signed git commit into what was signed and the signature, for an independent verifier:
#     git-signature.sh COMMIT PAYLOAD_OUT SIGNATURE_OUT
# The payload is the commit object without its `gpgsig` header (continuation lines start with a
# space); an X.509 signature is written as PEM "CMS" so `openssl cms -inform PEM` reads it.
set -euo pipefail
commit=${1:?usage: git-signature.sh COMMIT PAYLOAD_OUT SIGNATURE_OUT}
payload=${2:?} signature=${3:?}
git cat-file commit "$commit" | awk -v payload="$payload" -v signature="$signature" '
  in_header && /^gpgsig / { in_sig = 1; sub(/^gpgsig /, ""); print > signature; next }
  in_sig && /^ / { sub(/^ /, ""); print > signature; next }
  { in_sig = 0; if ($0 == "") in_header = 0; print > payload }
  BEGIN { in_header = 1 }'
[[ -s $signature ]] || { echo "git-signature.sh: $commit carries no gpgsig header" >&2; exit 1; }
sed -i -e 's/BEGIN SIGNED MESSAGE/BEGIN CMS/' -e 's/END SIGNED MESSAGE/END CMS/' "$signature"
