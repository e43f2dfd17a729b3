// RawSocket: see endpoint.h. The kernel delivers whole 64-byte descriptors; a read can still
// end inside one (a full buffer), so the bytes after the last whole frame stay at the start
// of the buffer for the next read.
#include "endpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "baton_shared.h"
#include "errors.h"

namespace baton {

namespace {
// reads per readable event before yielding to the rest of the event loop
constexpr int kMaxReads = 16;
// the largest write a writer makes (MAX_WRITE descriptors, src/dataplane/endpoint.ts): in
// message mode, anything longer is not one of ours
constexpr size_t kMaxMessage = 256 * BATON_DESC_SIZE;
}  // namespace

Napi::Function RawSocket::Init(Napi::Env env) {
  return DefineClass(env, "RawSocket",
                     {InstanceMethod("write", &RawSocket::Write),
                      InstanceMethod("wantWritable", &RawSocket::WantWritable),
                      InstanceMethod("close", &RawSocket::Close)});
}

// new RawSocket(fd, buffer, onRead(bytes), onWritable(), onEnd(errno)): starts reading at once.
// onRead gets the count of bytes in `buffer` from its start; it consumes whole descriptors.
// On a seqpacket socket (the broker data plane) each write arrives as one message, and a
// message that is not a whole number of descriptors (or longer than any writer makes) is
// reported as onRead(-its length) instead of being framed across reads.
RawSocket::RawSocket(const Napi::CallbackInfo& info) : Napi::ObjectWrap<RawSocket>(info), env_(info.Env()) {
  if (info.Length() < 5 || !info[0].IsNumber() || !info[1].IsBuffer() || !info[2].IsFunction() ||
      !info[3].IsFunction() || !info[4].IsFunction()) {
    Napi::TypeError::New(env_, "new RawSocket(fd, buffer, onRead, onWritable, onEnd)").ThrowAsJavaScriptException();
    return;
  }
  Napi::Buffer<uint8_t> buffer = info[1].As<Napi::Buffer<uint8_t>>();
  if (buffer.Length() < BATON_DESC_SIZE) {
    Napi::RangeError::New(env_, "the read buffer must hold a descriptor").ThrowAsJavaScriptException();
    return;
  }
  fd_ = info[0].As<Napi::Number>().Int32Value();
  int type = 0;
  socklen_t tlen = sizeof type;
  messages_ = getsockopt(fd_, SOL_SOCKET, SO_TYPE, &type, &tlen) == 0 && type == SOCK_SEQPACKET;
  if (messages_ && buffer.Length() < kMaxMessage) {
    Napi::RangeError::New(env_, "the read buffer must hold the largest message").ThrowAsJavaScriptException();
    return;
  }
  int flags = fcntl(fd_, F_GETFL);
  if (flags < 0 || fcntl(fd_, F_SETFL, flags | O_NONBLOCK) < 0) {
    ThrowErrno(env_, "making the data-plane socket non-blocking");
    return;
  }
  buf_ = buffer.Data();
  cap_ = buffer.Length();
  buffer_ = Napi::Persistent(buffer.As<Napi::Object>());
  onRead_ = Napi::Persistent(info[2].As<Napi::Function>());
  onWritable_ = Napi::Persistent(info[3].As<Napi::Function>());
  onEnd_ = Napi::Persistent(info[4].As<Napi::Function>());
  napi_async_init(env_, info.This(), Napi::String::New(env_, "baton.RawSocket"), &async_);
  uv_loop_t* loop = nullptr;
  napi_get_uv_event_loop(env_, &loop);
  poll_ = new uv_poll_t;
  if (uv_poll_init(loop, poll_, fd_) != 0) {
    delete poll_;
    poll_ = nullptr;
    MakeError(env_, "BATON_ERR_NATIVE", "polling the data-plane socket", EINVAL).ThrowAsJavaScriptException();
    return;
  }
  poll_->data = this;
  events_ = UV_READABLE;
  uv_poll_start(poll_, events_, OnPoll);
  Ref();  // alive while it polls, whether or not JS keeps it
}

RawSocket::~RawSocket() {
  if (async_) napi_async_destroy(env_, async_);
}

void RawSocket::OnPoll(uv_poll_t* handle, int status, int events) {
  auto* self = static_cast<RawSocket*>(handle->data);
  if (!self || self->fd_ < 0) return;
  Napi::HandleScope scope(self->env_);  // for the values handed to JS
  if (status < 0) {
    self->Stop(-status);
    return;
  }
  if (events & UV_WRITABLE) self->Writable();
  if ((events & UV_READABLE) && self->fd_ >= 0) self->Readable();
}

void RawSocket::Call(Napi::FunctionReference& fn, std::initializer_list<napi_value> args) {
  // MakeCallback runs nextTicks and microtasks afterwards, as Node's own streams do
  fn.MakeCallback(env_.Global(), args, async_);
}

// Takes the kernel's acknowledgements out of the `whole` bytes at `from` (only the SK_MSG program
// makes them, and both ends ignore them): a read of nothing else then costs no call into JS,
// the common case of an instance whose Idle notice returned its token. The rest close up, in
// order; returns their length.
size_t RawSocket::DropAcks(size_t whole, size_t from) {
  size_t kept = from;
  for (size_t at = from; at < from + whole; at += BATON_DESC_SIZE) {
    baton_desc d;  // copied: the buffer need not be aligned for it
    std::memcpy(&d, buf_ + at, sizeof d);
    if (d.magic == BATON_DESC_MAGIC && d.version == BATON_DESC_VERSION && d.kind == BATON_ACK) continue;
    if (kept != at) std::memmove(buf_ + kept, buf_ + at, BATON_DESC_SIZE);
    kept += BATON_DESC_SIZE;
  }
  return kept - from;
}

void RawSocket::Readable() {
  if (messages_) return ReadMessages();
  for (int i = 0; i < kMaxReads && fd_ >= 0; i++) {
    size_t space = cap_ - pending_;
    ssize_t n = recv(fd_, buf_ + pending_, space, MSG_DONTWAIT);
    if (n == 0) {
      Stop(0);
      return;
    }
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      if (errno == EINTR) continue;
      Stop(errno);
      return;
    }
    size_t total = pending_ + static_cast<size_t>(n);
    size_t whole = total - total % BATON_DESC_SIZE;
    pending_ = 0;
    size_t kept = DropAcks(whole);
    if (kept) Call(onRead_, {Napi::Number::New(env_, static_cast<double>(kept))});
    if (fd_ < 0) return;
    // the bytes of a frame cut short wait at the start for the rest
    if (total > whole) {
      std::memmove(buf_, buf_ + whole, total - whole);
      pending_ = total - whole;
    }
    // a short read: nothing more for now — unless JS just ran, which may have sent: what the
    // kernel answers a send with (the next queued descriptor, or an acknowledgement) is already
    // in this socket, and reading it now saves a wait for events that would return at once
    if (static_cast<size_t>(n) < space && !kept) return;
  }
}

// Message mode: whole messages gathered into the buffer while the largest still fits, one call
// into JS for all of them; a malformed one is reported on its own, in order.
void RawSocket::ReadMessages() {
  size_t have = 0;
  auto deliver = [&]() {
    if (have) Call(onRead_, {Napi::Number::New(env_, static_cast<double>(have))});
    have = 0;
  };
  for (int i = 0; i < kMaxReads * 4 && fd_ >= 0; i++) {
    if (cap_ - have < kMaxMessage) deliver();
    if (fd_ < 0) return;
    ssize_t n = recv(fd_, buf_ + have, cap_ - have, MSG_DONTWAIT | MSG_TRUNC);
    if (n == 0) {
      deliver();
      Stop(0);
      return;
    }
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      deliver();
      if (e != EAGAIN && e != EWOULDBLOCK) Stop(e);
      return;
    }
    size_t len = static_cast<size_t>(n);
    if (len % BATON_DESC_SIZE || len > kMaxMessage) {
      deliver();
      if (fd_ >= 0) Call(onRead_, {Napi::Number::New(env_, -static_cast<double>(len))});
      continue;
    }
    have += DropAcks(len, have);
  }
  deliver();
}

void RawSocket::Writable() {
  events_ &= ~UV_WRITABLE;
  uv_poll_start(poll_, events_, OnPoll);
  Call(onWritable_, {});
}

// Stops polling, closes the fd and lets the object be collected.
void RawSocket::Shutdown() {
  uv_poll_stop(poll_);
  uv_close(reinterpret_cast<uv_handle_t*>(poll_), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
  poll_ = nullptr;
  close(fd_);
  fd_ = -1;
  Unref();
}

// The socket ended (errno 0: EOF) or failed: shut down, then tell JS.
void RawSocket::Stop(int err) {
  if (fd_ < 0) return;
  Shutdown();
  Call(onEnd_, {Napi::Number::New(env_, err)});
}

// write(buffer, offset, length) -> bytes written now (fewer when the socket is full: call
// wantWritable() and write the rest on onWritable), or -errno.
Napi::Value RawSocket::Write(const Napi::CallbackInfo& info) {
  if (fd_ < 0) return Napi::Number::New(env_, -EBADF);
  if (info.Length() < 3 || !info[0].IsBuffer() || !info[1].IsNumber() || !info[2].IsNumber()) {
    Napi::TypeError::New(env_, "write(buffer, offset, length)").ThrowAsJavaScriptException();
    return env_.Undefined();
  }
  Napi::Buffer<uint8_t> b = info[0].As<Napi::Buffer<uint8_t>>();
  size_t off = info[1].As<Napi::Number>().Uint32Value();
  size_t len = info[2].As<Napi::Number>().Uint32Value();
  if (off > b.Length() || len > b.Length() - off) {
    Napi::RangeError::New(env_, "write beyond the buffer").ThrowAsJavaScriptException();
    return env_.Undefined();
  }
  ssize_t n;
  do n = send(fd_, b.Data() + off, len, MSG_DONTWAIT | MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  if (n < 0) return Napi::Number::New(env_, (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -errno);
  return Napi::Number::New(env_, static_cast<double>(n));
}

Napi::Value RawSocket::WantWritable(const Napi::CallbackInfo&) {
  if (fd_ >= 0 && !(events_ & UV_WRITABLE)) {
    events_ |= UV_WRITABLE;
    uv_poll_start(poll_, events_, OnPoll);
  }
  return env_.Undefined();
}

Napi::Value RawSocket::Close(const Napi::CallbackInfo&) {
  if (fd_ >= 0) Shutdown();
  return env_.Undefined();
}

}  // namespace baton
