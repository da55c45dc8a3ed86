#!/usr/bin/env bash
# with-user-config.sh COMMAND [ARG]...: runs COMMAND so that p11-kit (and with it GnuTLS and every
# p11-kit-proxy user) reads the caller's per-user configuration, $XDG_CONFIG_HOME/pkcs11/
# (pkcs11.conf and modules/*.module), as it does for any ordinary user.
#
# p11-kit skips per-user configuration in programs running as root ("skipping user config in
# program running as root", P11_KIT_DEBUG=conf). A root caller therefore runs COMMAND in a user
# namespace of its own (`unshare --user`, no uid mapping): getuid() is then the overflow uid, so
# p11-kit reads the user files, while the kernel still checks file access and the agent's peer
# credentials against the caller's real uid, so the cell's files and both tokens stay reachable.
# Where root cannot create a user namespace (e.g. a container under Docker's default seccomp
# profile, which lets only CAP_SYS_ADMIN unshare), the step exits 77, a skip with the reason
# below: the matrix never registers modules in the system's /etc/pkcs11/modules.
set -euo pipefail

if [[ $(id -u) != 0 ]]; then
  exec "$@"
fi
if error=$(unshare --user true 2>&1); then
  exec unshare --user -- "$@"
fi
echo "p11-kit reads per-user module files only in non-root programs, and this root process cannot" \
  "create a user namespace (unshare --user: ${error##*: }); the matrix does not register modules" \
  "system-wide"
exit 77
