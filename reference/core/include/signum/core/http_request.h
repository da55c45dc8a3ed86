// The HTTP/1.1 side both HTTPS clients share (https_client.cc over Asio + OpenSSL,
// https_client_windows.cc over Schannel): one way to write a request and one reconnect rule.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "signum/core/https_client.h"
#include "signum/core/status.h"

namespace signum {

// A request target as sent: no spaces or control characters, which would break the request line.
// Other bytes pass as they are (the server's tests send paths that are not UTF-8 on purpose).
bool IsValidRequestTarget(std::string_view target);

// The request's bytes: the request line; Host, User-Agent, Accept, Authorization (when there is a
// bearer token), Content-Type (with a body) and the caller's extra headers, which replace ours of
// the same name except Content-Length and Transfer-Encoding (we frame); Content-Length for a body
// or a POST/PUT/PATCH; the body. kInvalidArgument for a method, target, token or header that
// would break the framing.
Result<std::string> FormatHttpRequest(const std::string& method, const std::string& target,
                                      const std::string& host_header,
                                      const std::string& bearer_token, const std::string& body,
                                      const std::map<std::string, std::string>& extra_headers);

// One request on a kept-alive connection: a connection the server visibly closed while idle is
// dropped first; a reused connection that fails before any answer (the server closed it as we
// wrote) is re-made once. Connection provides IsOpen(), ConnectionLooksClosed(), Connect(),
// Exchange(request, bool* retryable) and Close().
template <typename Connection>
Result<HttpsResult> ExchangeReconnectingOnce(Connection& connection, const std::string& request) {
  for (int attempt = 0;; ++attempt) {
    if (connection.IsOpen() && connection.ConnectionLooksClosed()) connection.Close();
    const bool reused = connection.IsOpen();
    if (!reused) SIGNUM_RETURN_IF_ERROR(connection.Connect());
    bool retryable = false;
    Result<HttpsResult> result = connection.Exchange(request, &retryable);
    if (result.ok()) return result;
    connection.Close();
    if (!(reused && retryable && attempt == 0)) return result;
  }
}

}  // namespace signum
