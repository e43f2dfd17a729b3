// Loopback TCP socket pairs: sockmap holds TCP sockets, and a connected pair gives each
// function instance its own socket plus a peer end the gateway keeps (EOF tells it the
// instance is gone; dead letters arrive there).
#include "sockets.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "errors.h"

namespace baton {

namespace {
void NoDelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}
}  // namespace

// tcpPair() -> [a, b, port]: two connected fds (close-on-exec); `a` goes in the sockmap.
// `a` is bound explicitly before it connects, so its local port is its own among all bound
// sockets (a port picked by connect() alone may be shared with connections elsewhere): the
// program identifies the sender of a descriptor by that port.
Napi::Value TcpPair(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int lfd = -1, a = -1, b = -1;
  struct sockaddr_in addr = {};
  socklen_t len = sizeof addr;
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const char* step = "socket";
  lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (lfd < 0) goto fail;
  step = "bind";
  if (bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr)) goto fail;
  step = "listen";
  if (listen(lfd, 1) || getsockname(lfd, reinterpret_cast<sockaddr*>(&addr), &len)) goto fail;
  step = "socket";
  a = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (a < 0) goto fail;
  step = "bind";
  {
    struct sockaddr_in local = {};
    local.sin_family = AF_INET;
    local.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(a, reinterpret_cast<sockaddr*>(&local), sizeof local)) goto fail;
  }
  step = "connect";
  if (connect(a, reinterpret_cast<sockaddr*>(&addr), sizeof addr)) goto fail;
  step = "accept";
  b = accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
  if (b < 0) goto fail;
  close(lfd);
  NoDelay(a);
  NoDelay(b);
  {
    struct sockaddr_in mine = {};
    socklen_t mlen = sizeof mine;
    getsockname(a, reinterpret_cast<sockaddr*>(&mine), &mlen);
    Napi::Array out = Napi::Array::New(env, 3);
    out.Set(0u, Napi::Number::New(env, a));
    out.Set(1u, Napi::Number::New(env, b));
    out.Set(2u, Napi::Number::New(env, ntohs(mine.sin_port)));
    return out;
  }
fail:
  int e = errno;
  if (lfd >= 0) close(lfd);
  if (a >= 0) close(a);
  if (b >= 0) close(b);
  MakeError(env, "BATON_ERR_NATIVE", std::string("loopback socket pair: ") + step + " failed", e)
      .ThrowAsJavaScriptException();
  return env.Undefined();
}

// unixPair() -> [a, b]: a connected pair of Unix seqpacket sockets (close-on-exec) for the
// user-space broker: `a` goes to the instance, `b` stays with the broker. Seqpacket keeps each
// write one message, so the broker judges writes as the SK_MSG program does (a whole number
// of descriptors, or refused), and the kernel names the sender: the socket it came from.
Napi::Value UnixPair(const Napi::CallbackInfo& info) {
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds)) {
    MakeError(info.Env(), "BATON_ERR_NATIVE", "unix socket pair: socketpair failed", errno).ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
  Napi::Array out = Napi::Array::New(info.Env(), 2);
  out.Set(0u, Napi::Number::New(info.Env(), fds[0]));
  out.Set(1u, Napi::Number::New(info.Env(), fds[1]));
  return out;
}

// closeFd(fd): for fds handed to a child and no longer needed here.
Napi::Value CloseFd(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsNumber()) {
    Napi::TypeError::New(info.Env(), "fd must be a number").ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
  if (close(info[0].As<Napi::Number>().Int32Value())) ThrowErrno(info.Env(), "close");
  return info.Env().Undefined();
}

}  // namespace baton
