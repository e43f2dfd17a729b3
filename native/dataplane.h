#pragma once
#include <napi.h>

#include <map>

struct baton_bpf;
struct bpf_map;

namespace baton {

// One loaded and attached SK_MSG program with its sockmap. Closing (or collecting) it
// detaches the program and frees the maps; sockets in the map are left untouched.
class Dataplane : public Napi::ObjectWrap<Dataplane> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit Dataplane(const Napi::CallbackInfo& info);
  ~Dataplane() override;
  bool Adopt(struct baton_bpf* skel);

 private:
  Napi::Value Load(const Napi::CallbackInfo& info);
  Napi::Value Insert(const Napi::CallbackInfo& info);
  Napi::Value Remove(const Napi::CallbackInfo& info);
  Napi::Value Counters(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value IdleBuffer(const Napi::CallbackInfo& info);
  Napi::Value CustodyBuffer(const Napi::CallbackInfo& info);
  Napi::Value SetFunction(const Napi::CallbackInfo& info);
  Napi::Value Configure(const Napi::CallbackInfo& info);
  Napi::Value AllowCalls(const Napi::CallbackInfo& info);
  Napi::Value CreateQueues(const Napi::CallbackInfo& info);
  Napi::Value QueuePush(const Napi::CallbackInfo& info);
  Napi::Value QueuePop(const Napi::CallbackInfo& info);
  int QueueFd(const Napi::CallbackInfo& info);
  Napi::Value MapBuffer(Napi::Env env, struct bpf_map* map, size_t bytes, const char* what);
  bool CheckKey(const Napi::CallbackInfo& info, uint32_t* key);
  void Destroy();

  struct baton_bpf* skel_ = nullptr;
  bool checks_ = true;
  bool loading_ = false;  // a LoadWorker runs
  bool closed_ = false;   // close() was called
  // each late-bound function's kernel queue (the outer map holds them too)
  std::map<uint32_t, int> queues_; // by fnId * BATON_CLASSES + class
};

}  // namespace baton
