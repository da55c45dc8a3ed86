#!/usr/bin/python3
"""A TLS server on loopback that records every byte its clients send after the handshake.

The hostile server of the Windows agent's trust check (windows-agent.sh): the agent must refuse
it before it writes a byte of its request (its bearer token). It answers each request with HTTP
503 and a JSON error so a client that did talk gets a well-formed reply, and stops by itself.

    tls_recorder.py CERT KEY PORT_FILE RECORD_FILE SECONDS
"""
import os
import socket
import ssl
import sys
import time


def main() -> int:
    cert, key, port_file, record_file, seconds = sys.argv[1:6]
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.5)
    with open(port_file + ".tmp", "w") as f:
        f.write(f"{listener.getsockname()[1]}\n")
    os.replace(port_file + ".tmp", port_file)
    deadline = time.monotonic() + float(seconds)
    with open(record_file, "ab") as record:
        while time.monotonic() < deadline:
            try:
                raw, _ = listener.accept()
            except socket.timeout:
                continue
            raw.settimeout(3)
            try:
                conn = context.wrap_socket(raw, server_side=True)
            except (ssl.SSLError, OSError) as e:
                record.write(f"# handshake ended: {e}\n".encode())
                record.flush()
                raw.close()
                continue
            try:
                data = conn.recv(65536)
                record.write(data)
                record.flush()
                if data:
                    body = b'{"error":{"code":"UNAVAILABLE","message":"recorder"}}'
                    conn.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                                 b"Content-Length: " + str(len(body)).encode() +
                                 b"\r\nConnection: close\r\n\r\n" + body)
            except (ssl.SSLError, OSError) as e:
                record.write(f"# connection ended: {e}\n".encode())
                record.flush()
            finally:
                conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
