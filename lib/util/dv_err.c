#include <stddef.h>

#include <dvoice/dvoice.h>

#define ERRORS(X)                                                             \
  X(DVOICE_ERR_INVALID_ARGUMENT, "invalid argument")                          \
  X(DVOICE_ERR_INVALID_STATE, "operation not allowed in the current state")   \
  X(DVOICE_ERR_NOBUF, "buffer or queue full")                                 \
  X(DVOICE_ERR_AGAIN, "more input needed")                                    \
  X(DVOICE_ERR_TOO_LARGE, "size exceeds a limit")                             \
  X(DVOICE_ERR_TRUNCATED, "input truncated")                                  \
  X(DVOICE_ERR_TRAILING, "unexpected trailing bytes")                         \
  X(DVOICE_ERR_MALFORMED, "malformed input")                                  \
  X(DVOICE_ERR_UNSUPPORTED, "not supported")                                  \
  X(DVOICE_ERR_NOT_FOUND, "not found")                                        \
  X(DVOICE_ERR_CANCELED, "operation canceled")                                \
  X(DVOICE_ERR_TIMEOUT, "timed out")                                          \
  X(DVOICE_ERR_PROTO, "protocol violation by the peer")                       \
  X(DVOICE_ERR_WS_UPGRADE, "WebSocket upgrade refused")                       \
  X(DVOICE_ERR_WS_ACCEPT, "WebSocket upgrade: Sec-WebSocket-Accept mismatch") \
  X(DVOICE_ERR_WS_CLOSED, "WebSocket closed by the peer")                     \
  X(DVOICE_ERR_WS_TOO_BIG, "WebSocket message too big")                       \
  X(DVOICE_ERR_TRANSPORT, "transport error")                                  \
  X(DVOICE_ERR_DNS, "host name resolution failed")                            \
  X(DVOICE_ERR_CONN_REFUSED, "connection refused")                            \
  X(DVOICE_ERR_EOF, "connection closed by the peer")                          \
  X(DVOICE_ERR_TLS, "TLS handshake failed")                                   \
  X(DVOICE_ERR_TLS_BAD_CERT, "TLS certificate chain not trusted")             \
  X(DVOICE_ERR_TLS_HOSTNAME, "TLS certificate does not match the host name")  \
  X(DVOICE_ERR_TLS_CLOSED, "TLS connection closed by the peer")               \
  X(DVOICE_ERR_TLS_CA, "cannot load the trusted CA certificates")             \
  X(DVOICE_ERR_CRYPTO, "cryptographic check failed")                          \
  X(DVOICE_ERR_REJECTED, "rejected by Discord")                               \
  X(DVOICE_ERR_IPDISC_TYPE, "IP discovery: not a response")                 \
  X(DVOICE_ERR_IPDISC_LENGTH, "IP discovery: bad length field")               \
  X(DVOICE_ERR_IPDISC_ADDRESS, "IP discovery: bad address")                   \
  X(DVOICE_ERR_IPDISC_PORT, "IP discovery: port 0")                           \
  X(DVOICE_ERR_IPDISC_SSRC, "IP discovery: SSRC mismatch")                    \
  X(DVOICE_ERR_NOMEM, "out of memory")                                        \
  X(DVOICE_ERR_CALLBACK_FAILURE, "application callback failed")               \
  X(DVOICE_ERR_INTERNAL, "internal error")

const char *dvoice_strerror(int err) {
#define CASE(code, text)                                                      \
  case code:                                                                  \
    return text;
  switch (err) {
    case 0:
      return "success";
      ERRORS(CASE)
    default:
      return "unknown error";
  }
#undef CASE
}

const char *dvoice_err_name(int err) {
#define CASE(code, text)                                                      \
  case code:                                                                  \
    return #code;
  switch (err) {
    case 0:
      return "0";
      ERRORS(CASE)
    default:
      return "UNKNOWN";
  }
#undef CASE
}

int dvoice_err_is_fatal(int err) {
  return err <= DVOICE_ERR_FATAL && err >= -1999;
}
