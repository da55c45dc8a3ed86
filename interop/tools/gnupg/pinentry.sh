#!/bin/bash
# A non-interactive pinentry for gpg-agent: answers every GETPIN with the PIN stored in the file
# named by $1 (setup.sh writes a per-GNUPGHOME wrapper, because pinentry-program takes no
# arguments). Speaks just enough of the Assuan pinentry protocol for gpg-agent 2.2: a greeting,
# OK to every OPTION/SET*/CONFIRM, GETINFO pid, GETPIN and BYE. Why not loopback: gpgsm gets
# "Bad PIN" with --pinentry-mode loopback, and git never passes it.
set -u
pin_file=${1:?usage: pinentry.sh PIN_FILE}
pin=$(<"$pin_file")
# Assuan data lines percent-escape '%', CR and LF.
pin=${pin//%/%25}
pin=${pin//$'\r'/%0D}
pin=${pin//$'\n'/%0A}
echo "OK signum-harness pinentry ready"
while IFS= read -r line; do
  case ${line%% *} in
    GETPIN) printf 'D %s\nOK\n' "$pin" ;;
    GETINFO)
      case $line in
        *" pid"*) printf 'D %s\nOK\n' "$$" ;;
        *) echo OK ;;
      esac ;;
    BYE) echo OK; exit 0 ;;
    *) echo OK ;;
  esac
done
