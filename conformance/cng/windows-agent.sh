# Sourced by run-wine-suite.sh --windows-agent: signum-agent.exe, the native Windows agent, under
# Wine in front of the Linux deployment's signum-server, instead of the Linux agent.
#   windows_agent_start DIR URL CA TOKEN AGENT_ID   starts it (TCP only: SIGNUM_AGENT_SOCKET=off,
#                          127.0.0.1:0) with its files in DIR; sets WA_PORT, WA_PID, WA_SECRET
#                          (Windows path), WA_LOG; fails if it is not serving within 60 s
#   windows_agent_stop DIR stops it the way a console user does (SIGINT -> CTRL_C_EVENT under Wine)
#                          and checks that it removed its port and PID files
#   windows_agent_default_files_check DIR URL CA TOKEN
#                          zero configuration: an agent given only the server and its credential
#                          serves 127.0.0.1:<ephemeral> and announces itself in
#                          %LOCALAPPDATA%\Signum (agent.port, agent.secret), where signum-util.exe
#                          (and the providers) find it with no SIGNUM_AGENT_* variable and no
#                          `windows configure`; it removes agent.port when it stops
#   windows_agent_trust_check DIR CA TOKEN REPO_ROOT
#                          the agent must not send its request (bearer token) to a server its CA
#                          file does not vouch for: a TLS recorder on loopback gets nothing from an
#                          agent trusting CA when it shows a throwaway CA's certificate for
#                          127.0.0.1, CA's certificate for another name, or CA's certificate for
#                          TLS clients only; and gets the token from a control agent trusting the
#                          throwaway CA (so the cases can see a leak)
# Needs WINE64 and a started prefix (cmake/wine-prefix.sh) and winpath() from the caller.

# Waits (up to 60 s) until the agent PID has written PORT_FILE; false if it did not or died.
wait_for_port_file() {
  local port_file=$1 pid=$2 i
  for i in $(seq 1 120); do
    [[ -s $port_file ]] && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.5
  done
  [[ -s $port_file ]]
}

# Asks the agent PID to stop the way a console user does (SIGINT -> CTRL_C_EVENT under Wine);
# false, after killing it, if it has not ended within 10 s.
stop_with_ctrl_c() {
  local pid=$1 i
  kill -INT "$pid" 2>/dev/null || true
  for i in $(seq 1 40); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.25
  done
  kill -KILL "$pid" 2>/dev/null || true
  return 1
}

# Starts tls_recorder.py with CERT/KEY, recording into DIR; sets RECORDER_PID and RECORDER_URL.
recorder_start() {
  local dir=$1 cert=$2 key=$3 root=$4 i
  mkdir -p "$dir"
  /usr/bin/python3 "$root/conformance/cng/tls_recorder.py" "$cert" "$key" "$dir/port" \
    "$dir/received" 60 &
  RECORDER_PID=$!
  for i in $(seq 1 40); do [[ -s $dir/port ]] && break; sleep 0.25; done
  RECORDER_URL=https://127.0.0.1:$(tr -dc 0-9 <"$dir/port")
}

recorder_stop() {
  kill "$RECORDER_PID" 2>/dev/null || true
  wait "$RECORDER_PID" 2>/dev/null || true
}

windows_agent_start() {
  local dir=$1 url=$2 ca=$3 token=$4 agent_id=$5
  mkdir -p "$dir"
  rm -f "$dir/agent.port" "$dir/agent.pid"
  WA_LOG=$dir/agent.log
  WA_SECRET=$(winpath "$dir/agent.secret")
  # Only what the agent is told here: nothing of the Linux agent's environment.
  env -u SIGNUM_AGENT_SOCKET -u SIGNUM_AGENT_TCP -u SIGNUM_AGENT_SECRET_FILE -u SIGNUM_CONFIG \
    -u SIGNUM_CERTIFICATE_PATH -u SIGNUM_KEY_PATH \
    SIGNUM_SERVER_URL="$url" SIGNUM_TLS_TRUSTED_CA="$(winpath "$ca")" \
    SIGNUM_TOKEN_FILE="$(winpath "$token")" SIGNUM_AGENT_SOCKET=off SIGNUM_AGENT_TCP=127.0.0.1:0 \
    SIGNUM_AGENT_SECRET_FILE="$WA_SECRET" SIGNUM_AGENT_PORT_FILE="$(winpath "$dir/agent.port")" \
    SIGNUM_AGENTID="$agent_id" SIGNUM_LOGLEVEL=info \
    "$WINE64" "$WINBUILD/bin/signum-agent.exe" --pid-file "$(winpath "$dir/agent.pid")" \
    --log-file "$(winpath "$WA_LOG")" </dev/null >"$dir/agent.out" 2>&1 &
  WA_PID=$!
  if ! wait_for_port_file "$dir/agent.port" "$WA_PID"; then
    cat "$dir/agent.out" "$WA_LOG" 2>/dev/null >&2
    echo "FAIL: signum-agent.exe is not serving after 60 s (log: $WA_LOG)" >&2
    return 1
  fi
  WA_PORT=$(tr -dc 0-9 <"$dir/agent.port")
}

windows_agent_stop() {
  local dir=$1
  [[ -n ${WA_PID:-} ]] || return 0
  if ! stop_with_ctrl_c "$WA_PID"; then
    echo "FAIL: signum-agent.exe did not stop on Ctrl+C within 10 s" >&2
    WA_PID=""
    return 1
  fi
  WA_PID=""
  if [[ -e $dir/agent.port || -e $dir/agent.pid ]]; then
    echo "FAIL: signum-agent.exe left its port or PID file behind in $dir" >&2
    return 1
  fi
  grep -q "received Ctrl+C, shutting down" "$dir/agent.log" ||
    { echo "FAIL: signum-agent.exe did not log its Ctrl+C shutdown" >&2; return 1; }
}

windows_agent_default_files_check() {
  local dir=$1/default-files url=$2 ca=$3 token=$4 pid out status_rc rc=0
  rm -rf "$dir"
  mkdir -p "$dir"
  # Wine sets %LOCALAPPDATA% from its own profile (an inherited value is overridden):
  # C:\users\<user>\AppData\Local in the prefix.
  local signum_dir=$WINEPREFIX/drive_c/users/$(id -un)/AppData/Local/Signum
  rm -rf "$signum_dir"
  # Nothing left by another test may point the providers elsewhere.
  "$WINE64" reg delete 'HKCU\Software\Signum Harness\Agent' /f >/dev/null 2>&1 || true
  env -u SIGNUM_AGENT_SOCKET -u SIGNUM_AGENT_TCP -u SIGNUM_AGENT_SECRET_FILE \
    -u SIGNUM_AGENT_PORT_FILE -u SIGNUM_CONFIG -u SIGNUM_CERTIFICATE_PATH -u SIGNUM_KEY_PATH \
    SIGNUM_SERVER_URL="$url" SIGNUM_TLS_TRUSTED_CA="$(winpath "$ca")" \
    SIGNUM_TOKEN_FILE="$(winpath "$token")" \
    "$WINE64" "$WINBUILD/bin/signum-agent.exe" --log-file "$(winpath "$dir/agent.log")" \
    </dev/null >"$dir/agent.out" 2>&1 &
  pid=$!
  if ! wait_for_port_file "$signum_dir/agent.port" "$pid" || [[ ! -s $signum_dir/agent.secret ]]; then
    cat "$dir/agent.out" "$dir/agent.log" >&2 2>/dev/null
    echo "FAIL: signum-agent.exe with its defaults wrote no agent.port/agent.secret under" \
         "%LOCALAPPDATA%\\Signum" >&2
    kill -KILL "$pid" 2>/dev/null || true
    return 1
  fi
  local port
  port=$(tr -dc 0-9 <"$signum_dir/agent.port")
  set +e
  out=$(env -u SIGNUM_AGENT_TCP -u SIGNUM_AGENT_SECRET_FILE -u SIGNUM_AGENT_SOCKET \
    "$WINE64" "$WINBUILD/bin/signum-util.exe" status 2>&1)
  status_rc=$?
  set -e
  if [[ $status_rc -ne 0 ]] || ! grep -q "tcp:127.0.0.1:$port" <<<"$out"; then
    echo "FAIL: signum-util.exe with no configuration did not find the agent by its default" \
         "files (exit $status_rc):" >&2
    echo "$out" >&2
    rc=1
  fi
  if ! stop_with_ctrl_c "$pid"; then
    echo "FAIL: signum-agent.exe (defaults) did not stop on Ctrl+C" >&2
    rc=1
  elif [[ -e $signum_dir/agent.port ]]; then
    echo "FAIL: signum-agent.exe left %LOCALAPPDATA%\\Signum\\agent.port behind" >&2
    rc=1
  fi
  [[ $rc -eq 0 ]] && echo "default files: an unconfigured agent served on 127.0.0.1:$port and" \
    "signum-util.exe found it with no configuration"
  return $rc
}

# One refusal case of the trust check: the recorder serves CERT/KEY, an agent trusting CA must
# answer `signum-util status` with exit 2 naming EXPECTED and send the recorder nothing.
trust_case_refused() {
  local probe=$1 name=$2 cert=$3 key=$4 ca=$5 token=$6 root=$7 expected=$8
  local dir=$probe/$name out status_rc rc=0
  recorder_start "$dir" "$cert" "$key" "$root"
  windows_agent_start "$dir/agent" "$RECORDER_URL" "$ca" "$token" signum-trust-check || rc=1
  set +e
  out=$("$WINE64" "$WINBUILD/bin/signum-util.exe" --tcp "127.0.0.1:$WA_PORT" \
    --secret-file "$WA_SECRET" status 2>&1)
  status_rc=$?
  set -e
  windows_agent_stop "$dir/agent" || rc=1
  recorder_stop
  echo "$out" >"$dir/status.txt"
  if [[ $status_rc -ne 2 ]] || ! grep -qF "$expected" <<<"$out"; then
    echo "FAIL: trust check '$name': the agent did not refuse the server with '$expected'" \
         "(signum-util status exit $status_rc):" >&2
    echo "$out" >&2
    rc=1
  fi
  if grep -aqiF authorization "$dir/received" ||
     grep -aqF "$(tr -d '\n' <"$token")" "$dir/received"; then
    echo "FAIL: trust check '$name': the agent sent its request (and token) to the server:" >&2
    cat -v "$dir/received" >&2
    rc=1
  fi
  return $rc
}

# A certificate for the recorder: issued by CA_CERT/CA_KEY, for SAN, with EKU.
issue_server_cert() {
  local out=$1 ca_cert=$2 ca_key=$3 san=$4 eku=$5
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=signum trust check" \
    -keyout "$out.key" -out "$out.csr" >/dev/null 2>&1
  printf 'subjectAltName=%s\nextendedKeyUsage=%s\n' "$san" "$eku" >"$out.ext"
  openssl x509 -req -in "$out.csr" -CA "$ca_cert" -CAkey "$ca_key" -CAcreateserial -days 2 \
    -extfile "$out.ext" -out "$out.pem" >/dev/null 2>&1
}

windows_agent_trust_check() {
  local dir=$1 ca=$2 token=$3 root=$4
  local probe=$dir/trust-check rc=0
  rm -rf "$probe"
  mkdir -p "$probe"
  # A throwaway CA: a certificate from it is right in everything but the issuer.
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=Not the deployment's CA" -keyout "$probe/rogue-ca.key" -out "$probe/rogue-ca.pem" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign \
    >/dev/null 2>&1
  issue_server_cert "$probe/rogue" "$probe/rogue-ca.pem" "$probe/rogue-ca.key" IP:127.0.0.1 serverAuth
  trust_case_refused "$probe" another-ca "$probe/rogue.pem" "$probe/rogue.key" "$ca" "$token" \
    "$root" "is not issued by a CA in" || rc=1
  # The deployment's own CA (its key is a file of the demo), certifying the wrong thing: a name
  # that is not the host, a certificate for TLS clients only.
  local ca_key=${ca%.pem}.key
  if [[ -f $ca_key ]]; then
    issue_server_cert "$probe/other-name" "$ca" "$ca_key" "IP:127.0.0.2,DNS:signum.invalid" serverAuth
    trust_case_refused "$probe" other-name "$probe/other-name.pem" "$probe/other-name.key" "$ca" \
      "$token" "$root" "does not name the address 127.0.0.1" || rc=1
    issue_server_cert "$probe/client-only" "$ca" "$ca_key" IP:127.0.0.1 clientAuth
    trust_case_refused "$probe" client-only "$probe/client-only.pem" "$probe/client-only.key" \
      "$ca" "$token" "$root" "is not for TLS servers" || rc=1
  else
    echo "FAIL: no key for $ca: the name and usage cases cannot be made" >&2
    rc=1
  fi

  # Control: an agent trusting the throwaway CA reaches the recorder and hands it the token, so
  # the cases above would have seen a leak.
  local control=$probe/control
  recorder_start "$control" "$probe/rogue.pem" "$probe/rogue.key" "$root"
  windows_agent_start "$control/agent" "$RECORDER_URL" "$probe/rogue-ca.pem" "$token" \
    signum-trust-check || rc=1
  set +e
  "$WINE64" "$WINBUILD/bin/signum-util.exe" --tcp "127.0.0.1:$WA_PORT" --secret-file "$WA_SECRET" \
    status >"$control/status.txt" 2>&1
  set -e
  windows_agent_stop "$control/agent" || rc=1
  recorder_stop
  if ! grep -aqF "Authorization: Bearer $(tr -d '\n' <"$token")" "$control/received"; then
    echo "FAIL: control: an agent trusting the recorder's CA did not reach it; the cases above" \
         "prove nothing (received: $(wc -c <"$control/received") bytes)" >&2
    rc=1
  fi
  [[ $rc -eq 0 ]] && echo "trust check: another CA, another name and a client-only certificate" \
    "refused with nothing sent; the control reached the recorder with the token"
  return $rc
}
