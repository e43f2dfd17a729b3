#pragma once
#include <napi.h>
#include <uv.h>

namespace baton {

// A data-plane socket read and written without Node's stream machinery: libuv polls the fd,
// each readable event reads what is there into one buffer the JS side owns (no allocation per
// read) and calls it once with the byte count; writes go straight to write(2). This is the
// hot path of every hop, where Node's net.Socket spent several microseconds per descriptor.
class RawSocket : public Napi::ObjectWrap<RawSocket> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit RawSocket(const Napi::CallbackInfo& info);
  ~RawSocket() override;

 private:
  static void OnPoll(uv_poll_t* handle, int status, int events);
  void Readable();
  size_t DropAcks(size_t whole, size_t from = 0);
  void ReadMessages();
  void Writable();
  void Stop(int err);
  void Shutdown();
  void Call(Napi::FunctionReference& fn, std::initializer_list<napi_value> args);
  Napi::Value Write(const Napi::CallbackInfo& info);
  Napi::Value WantWritable(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);

  Napi::Env env_;
  int fd_ = -1;
  uv_poll_t* poll_ = nullptr;
  int events_ = 0;
  uint8_t* buf_ = nullptr;
  size_t cap_ = 0;
  bool messages_ = false;  // a seqpacket socket: one write, one message
  size_t pending_ = 0;  // bytes of an unfinished frame kept at the start of buf_
  Napi::ObjectReference buffer_;
  Napi::FunctionReference onRead_;
  Napi::FunctionReference onWritable_;
  Napi::FunctionReference onEnd_;
  napi_async_context async_ = nullptr;
};

}  // namespace baton
