// The kernel data plane: load the SK_MSG program from the embedded skeleton, attach it to
// the sockmap, and manage sockmap entries and per-key counters.
#include "dataplane.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <sys/mman.h>
#include <unistd.h>

#include <vector>

#include "baton.skel.h"
#include "baton_shared.h"
#include "errors.h"

namespace baton {

namespace {
// libbpf's own diagnostics would go to stderr on every failed probe; the JS side reports
// failures with typed errors instead.
int SilentPrint(enum libbpf_print_level, const char*, va_list) { return 0; }
}  // namespace

Napi::Function Dataplane::Init(Napi::Env env) {
  return DefineClass(env, "Dataplane",
                     {InstanceMethod("load", &Dataplane::Load),
                      InstanceMethod("insert", &Dataplane::Insert),
                      InstanceMethod("remove", &Dataplane::Remove),
                      InstanceMethod("counters", &Dataplane::Counters),
                      InstanceMethod("close", &Dataplane::Close),
                      InstanceMethod("idleBuffer", &Dataplane::IdleBuffer),
                      InstanceMethod("custodyBuffer", &Dataplane::CustodyBuffer),
                      InstanceMethod("setFunction", &Dataplane::SetFunction),
                      InstanceMethod("configure", &Dataplane::Configure),
                      InstanceMethod("allowCalls", &Dataplane::AllowCalls),
                      InstanceMethod("createQueues", &Dataplane::CreateQueues),
                      InstanceMethod("queuePush", &Dataplane::QueuePush),
                      InstanceMethod("queuePop", &Dataplane::QueuePop)});
}

namespace {
// Where opening, loading or attaching the program failed, and why.
struct LoadFailure {
  const char* what = nullptr;
  int err = 0;
};

// Opens the embedded skeleton, loads the program (the kernel's verifier: ~50 ms here) and
// attaches it to the sockmap. Runs on the calling thread; touches no JS.
struct baton_bpf* LoadProgram(bool checks, LoadFailure* failure) {
  struct baton_bpf* skel = baton_bpf__open();
  if (!skel) {
    *failure = {"opening the BPF skeleton", errno};
    return nullptr;
  }
  skel->rodata->checks = checks ? 1 : 0;
  int err = baton_bpf__load(skel);
  if (err) {
    baton_bpf__destroy(skel);
    *failure = {"loading the SK_MSG program", -err};
    return nullptr;
  }
  if (bpf_prog_attach(bpf_program__fd(skel->progs.baton_route), bpf_map__fd(skel->maps.baton_socks), BPF_SK_MSG_VERDICT, 0)) {
    int e = errno;
    baton_bpf__destroy(skel);
    *failure = {"attaching the SK_MSG program to the sockmap", e};
    return nullptr;
  }
  return skel;
}

// Dataplane#load(): LoadProgram on a thread of libuv's pool, so the process goes on (loading
// its own code, building functions) while the kernel verifies the program.
class LoadWorker : public Napi::AsyncWorker {
 public:
  LoadWorker(Napi::Env env, Napi::Object owner, Dataplane* dp, bool checks)
      : Napi::AsyncWorker(env, "baton.Dataplane.load"), deferred_(Napi::Promise::Deferred::New(env)), dp_(dp), checks_(checks) {
    owner_ = Napi::Persistent(owner);  // alive until settled
  }
  Napi::Promise Promise() const { return deferred_.Promise(); }
  void Execute() override { skel_ = LoadProgram(checks_, &failure_); }
  void OnOK() override {
    Napi::Env env = Env();
    if (!skel_) {
      deferred_.Reject(BpfError(env, failure_.what, failure_.err, true).Value());
    } else if (!dp_->Adopt(skel_)) {
      deferred_.Reject(MakeError(env, "BATON_ERR_CLOSED", "the data plane was closed while its program loaded", 0).Value());
    } else {
      deferred_.Resolve(owner_.Value());
    }
    owner_.Reset();
  }

 private:
  Napi::Promise::Deferred deferred_;
  Napi::ObjectReference owner_;
  Dataplane* dp_;
  bool checks_;
  struct baton_bpf* skel_ = nullptr;
  LoadFailure failure_;
};
}  // namespace

// new Dataplane({ checks }) loads the program at once; new Dataplane({ checks, deferred: true })
// makes an empty one whose load() does it on another thread. checks: false is the bench's
// reference program (see bpf/baton.bpf.c).
Dataplane::Dataplane(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Dataplane>(info) {
  Napi::Env env = info.Env();
  libbpf_set_print(SilentPrint);
  if (info.Length() > 0 && info[0].IsObject()) {
    Napi::Object options = info[0].As<Napi::Object>();
    Napi::Value checks = options.Get("checks");
    if (checks.IsBoolean()) checks_ = checks.As<Napi::Boolean>().Value();
    if (options.Get("deferred").ToBoolean()) return;
  }
  LoadFailure failure;
  skel_ = LoadProgram(checks_, &failure);
  if (!skel_) BpfError(env, failure.what, failure.err, true).ThrowAsJavaScriptException();
}

// load() -> Promise<this>: loads the program off this thread (once, on a deferred Dataplane).
Napi::Value Dataplane::Load(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (skel_ || loading_ || closed_) {
    Napi::Error::New(env, "load() is for a deferred data plane, once").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  loading_ = true;
  auto* worker = new LoadWorker(env, info.This().As<Napi::Object>(), this, checks_);
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

// The program a LoadWorker loaded; false (and it is destroyed) if close() came first.
bool Dataplane::Adopt(struct baton_bpf* skel) {
  loading_ = false;
  if (closed_) {
    bpf_prog_detach2(bpf_program__fd(skel->progs.baton_route), bpf_map__fd(skel->maps.baton_socks), BPF_SK_MSG_VERDICT);
    baton_bpf__destroy(skel);
    return false;
  }
  skel_ = skel;
  return true;
}

Dataplane::~Dataplane() { Destroy(); }

void Dataplane::Destroy() {
  if (!skel_) return;
  for (auto& [fn, fd] : queues_) close(fd);
  queues_.clear();
  bpf_prog_detach2(bpf_program__fd(skel_->progs.baton_route), bpf_map__fd(skel_->maps.baton_socks),
                   BPF_SK_MSG_VERDICT);
  baton_bpf__destroy(skel_);
  skel_ = nullptr;
}

bool Dataplane::CheckKey(const Napi::CallbackInfo& info, uint32_t* key) {
  if (!skel_) {
    MakeError(info.Env(), "BATON_ERR_CLOSED", "the data plane is closed", 0).ThrowAsJavaScriptException();
    return false;
  }
  if (info.Length() < 1 || !info[0].IsNumber()) {
    Napi::TypeError::New(info.Env(), "key must be a number").ThrowAsJavaScriptException();
    return false;
  }
  int64_t k = info[0].As<Napi::Number>().Int64Value();
  if (k < 0 || k >= BATON_MAX_KEYS) {
    Napi::RangeError::New(info.Env(), "key out of range 0.." + std::to_string(BATON_MAX_KEYS - 1))
        .ThrowAsJavaScriptException();
    return false;
  }
  *key = static_cast<uint32_t>(k);
  return true;
}

// insert(key, fd, port, fn): the socket must be an established TCP socket bound to local
// `port`; the program learns a descriptor's sender (key, and the function `fn` it runs) from
// that port. The sender entry goes in first, so the socket never sends unidentified.
Napi::Value Dataplane::Insert(const Napi::CallbackInfo& info) {
  uint32_t key;
  if (!CheckKey(info, &key)) return info.Env().Undefined();
  if (info.Length() < 4 || !info[1].IsNumber() || !info[2].IsNumber() || !info[3].IsNumber()) {
    Napi::TypeError::New(info.Env(), "insert(key, fd, port, fn)").ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
  uint32_t fd = info[1].As<Napi::Number>().Uint32Value();
  uint32_t port = info[2].As<Napi::Number>().Uint32Value();
  struct baton_sender sender = {key, 0, info[3].As<Napi::Number>().Uint32Value()};
  if (bpf_map_update_elem(bpf_map__fd(skel_->maps.baton_senders), &port, &sender, BPF_ANY)) {
    BpfError(info.Env(), "registering the socket's sender key", errno).ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
  if (bpf_map_update_elem(bpf_map__fd(skel_->maps.baton_socks), &key, &fd, BPF_ANY)) {
    int e = errno;
    bpf_map_delete_elem(bpf_map__fd(skel_->maps.baton_senders), &port);
    BpfError(info.Env(), "inserting socket into the sockmap", e).ThrowAsJavaScriptException();
  }
  return info.Env().Undefined();
}

// remove(key, port) -> whether a socket was there. Forgets the sender entry of `port` too.
Napi::Value Dataplane::Remove(const Napi::CallbackInfo& info) {
  uint32_t key;
  if (!CheckKey(info, &key)) return info.Env().Undefined();
  if (info.Length() < 2 || !info[1].IsNumber()) {
    Napi::TypeError::New(info.Env(), "remove(key, port)").ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
  uint32_t port = info[1].As<Napi::Number>().Uint32Value();
  bpf_map_delete_elem(bpf_map__fd(skel_->maps.baton_senders), &port);  // ENOENT is fine
  if (bpf_map_delete_elem(bpf_map__fd(skel_->maps.baton_socks), &key) == 0)
    return Napi::Boolean::New(info.Env(), true);
  // an emptied sockmap slot answers EINVAL (the kernel drops closed sockets itself)
  if (errno == ENOENT || errno == EINVAL) return Napi::Boolean::New(info.Env(), false);
  BpfError(info.Env(), "removing a sockmap entry", errno).ThrowAsJavaScriptException();
  return info.Env().Undefined();
}

// counters(key) -> { redirected, deadLetter } as numbers (exact below 2^53).
Napi::Value Dataplane::Counters(const Napi::CallbackInfo& info) {
  uint32_t key;
  if (!CheckKey(info, &key)) return info.Env().Undefined();
  struct baton_counters c = {};
  if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.baton_counters), &key, &c)) {
    BpfError(info.Env(), "reading counters", errno).ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
  Napi::Object out = Napi::Object::New(info.Env());
  out.Set("redirected", Napi::Number::New(info.Env(), static_cast<double>(c.redirected)));
  out.Set("deadLetter", Napi::Number::New(info.Env(), static_cast<double>(c.dead_letter)));
  out.Set("boundFast", Napi::Number::New(info.Env(), static_cast<double>(c.bound_fast)));
  out.Set("toDispatcher", Napi::Number::New(info.Env(), static_cast<double>(c.to_dispatcher)));
  out.Set("refused", Napi::Number::New(info.Env(), static_cast<double>(c.refused)));
  out.Set("reason", Napi::Number::New(info.Env(), static_cast<double>(c.reason)));
  out.Set("queued", Napi::Number::New(info.Env(), static_cast<double>(c.queued)));
  out.Set("handed", Napi::Number::New(info.Env(), static_cast<double>(c.handed)));
  return out;
}

// An ArrayBuffer over a BPF_F_MMAPABLE array map, shared with the program. The mapping
// outlives close() until collected.
Napi::Value Dataplane::MapBuffer(Napi::Env env, struct bpf_map* map, size_t bytes, const char* what) {
  if (!skel_) {
    MakeError(env, "BATON_ERR_CLOSED", "the data plane is closed", 0).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  size_t size = (bytes + page - 1) / page * page;
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, bpf_map__fd(map), 0);
  if (p == MAP_FAILED) {
    BpfError(env, std::string("mapping the ") + what, errno).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::ArrayBuffer::New(env, p, size, [size](Napi::Env, void* data) { munmap(data, size); });
}

// idleBuffer(): one struct baton_idle per function. The gateway returns idle tokens with
// atomic OR on these words while the program claims them with atomic fetch-and.
Napi::Value Dataplane::IdleBuffer(const Napi::CallbackInfo& info) {
  return MapBuffer(info.Env(), skel_ ? skel_->maps.baton_idle : nullptr,
                   sizeof(struct baton_idle) * BATON_MAX_FUNCTIONS, "idle-token map");
}

// custodyBuffer(): one struct baton_custody per slot (see baton_shared.h).
Napi::Value Dataplane::CustodyBuffer(const Napi::CallbackInfo& info) {
  return MapBuffer(info.Env(), skel_ ? skel_->maps.baton_custody : nullptr,
                   sizeof(struct baton_custody) * BATON_MAX_SLOTS, "slot custody map");
}

// configure(slots, capacity, starveEvery): the pool geometry descriptors are checked against,
// and how often a taking from a function's queues serves the lowest class first.
Napi::Value Dataplane::Configure(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!skel_) {
    MakeError(env, "BATON_ERR_CLOSED", "the data plane is closed", 0).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (info.Length() < 3 || !info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsNumber()) {
    Napi::TypeError::New(env, "configure(slots, capacity, starveEvery)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  uint32_t zero = 0;
  struct baton_config cfg = {info[0].As<Napi::Number>().Uint32Value(), info[1].As<Napi::Number>().Uint32Value(),
                             info[2].As<Napi::Number>().Uint32Value()};
  if (cfg.slots > BATON_MAX_SLOTS) {
    Napi::RangeError::New(env, "more slots than the custody map holds").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (bpf_map_update_elem(bpf_map__fd(skel_->maps.baton_config), &zero, &cfg, BPF_ANY))
    BpfError(env, "configuring the pool geometry", errno).ThrowAsJavaScriptException();
  return env.Undefined();
}

// setFunction(fnId, baseKey, concurrency, keys): token t of fnId belongs to key
// baseKey + t / concurrency; keys baseKey..baseKey+keys-1 are its instances'. Concurrency 0:
// no instance serves it now (the program passes its descriptors to the dispatcher).
Napi::Value Dataplane::SetFunction(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!skel_) {
    MakeError(env, "BATON_ERR_CLOSED", "the data plane is closed", 0).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (info.Length() < 4 || !info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsNumber() || !info[3].IsNumber()) {
    Napi::TypeError::New(env, "setFunction(fnId, baseKey, concurrency, keys)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  uint32_t fn = info[0].As<Napi::Number>().Uint32Value();
  struct baton_fn f = {info[1].As<Napi::Number>().Uint32Value(), info[2].As<Napi::Number>().Uint32Value()};
  uint32_t keys = info[3].As<Napi::Number>().Uint32Value();
  if (fn >= BATON_MAX_FUNCTIONS || f.base_key >= BATON_MAX_KEYS || f.concurrency > BATON_MAX_TOKENS ||
      keys > BATON_MAX_KEYS - f.base_key) {
    Napi::RangeError::New(env, "function id, base key, concurrency or key count out of range").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (bpf_map_update_elem(bpf_map__fd(skel_->maps.baton_fns), &fn, &f, BPF_ANY)) {
    BpfError(env, "configuring a function", errno).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  uint32_t owner = fn + 1;
  for (uint32_t k = f.base_key; k < f.base_key + keys; k++) {
    if (bpf_map_update_elem(bpf_map__fd(skel_->maps.baton_keyfn), &k, &owner, BPF_ANY)) {
      BpfError(env, "configuring a function's keys", errno).ThrowAsJavaScriptException();
      return env.Undefined();
    }
  }
  return env.Undefined();
}

// allowCalls(from, [to, …], [ret, …]): function `from` may call each function `to` and return
// results to each function `ret` (and nothing else).
Napi::Value Dataplane::AllowCalls(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!skel_) {
    MakeError(env, "BATON_ERR_CLOSED", "the data plane is closed", 0).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (info.Length() < 3 || !info[0].IsNumber() || !info[1].IsArray() || !info[2].IsArray()) {
    Napi::TypeError::New(env, "allowCalls(from, to[], ret[])").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  uint32_t from = info[0].As<Napi::Number>().Uint32Value();
  struct baton_edges e = {};
  auto setBits = [](Napi::Array ids, unsigned long long* words) {
    for (uint32_t i = 0; i < ids.Length(); i++) {
      uint32_t t = ids.Get(i).As<Napi::Number>().Uint32Value();
      if (t < BATON_MAX_FUNCTIONS) words[t / 64] |= 1ull << (t % 64);
    }
  };
  setBits(info[1].As<Napi::Array>(), e.to);
  setBits(info[2].As<Napi::Array>(), e.ret);
  if (from >= BATON_MAX_FUNCTIONS) {
    Napi::RangeError::New(env, "function id out of range").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (bpf_map_update_elem(bpf_map__fd(skel_->maps.baton_edges), &from, &e, BPF_ANY))
    BpfError(env, "setting a function's allowed calls", errno).ThrowAsJavaScriptException();
  return env.Undefined();
}

// createQueues([[fnId, depth], ...]): the kernel queues of the late-bound functions, one per
// request class, each holding up to `depth` descriptors that wait for an idle instance. All go
// into the outer map in one batch: every update of a map of maps waits for an RCU grace period
// (7-15 ms here), so one update per queue cost a 3-function chain ~100 ms of its start.
Napi::Value Dataplane::CreateQueues(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!skel_) {
    MakeError(env, "BATON_ERR_CLOSED", "the data plane is closed", 0).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (info.Length() < 1 || !info[0].IsArray()) {
    Napi::TypeError::New(env, "createQueues([[fnId, depth], ...])").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Array specs = info[0].As<Napi::Array>();
  std::vector<uint32_t> keys;
  std::vector<int> fds;
  auto undo = [&]() {
    for (int fd : fds) close(fd);
  };
  for (uint32_t i = 0; i < specs.Length(); i++) {
    Napi::Value v = specs.Get(i);
    Napi::Array spec = v.IsArray() ? v.As<Napi::Array>() : Napi::Array::New(env);
    if (spec.Length() != 2 || !spec.Get(0u).IsNumber() || !spec.Get(1u).IsNumber()) {
      undo();
      Napi::TypeError::New(env, "createQueues([[fnId, depth], ...])").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    uint32_t fn = spec.Get(0u).As<Napi::Number>().Uint32Value();
    uint32_t depth = spec.Get(1u).As<Napi::Number>().Uint32Value();
    bool taken = queues_.count(fn * BATON_CLASSES) > 0;
    for (uint32_t k : keys) taken = taken || k == fn * BATON_CLASSES;
    if (fn >= BATON_MAX_FUNCTIONS || depth == 0 || taken) {
      undo();
      Napi::RangeError::New(env, "function id out of range, depth 0, or a queue already made").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    for (uint32_t cls = 0; cls < BATON_CLASSES; cls++) {
      int fd = bpf_map_create(BPF_MAP_TYPE_QUEUE, "baton_queue", 0, sizeof(struct baton_raw_desc), depth, nullptr);
      if (fd < 0) {
        int e = errno;
        undo();
        BpfError(env, "creating a late-binding queue", e).ThrowAsJavaScriptException();
        return env.Undefined();
      }
      keys.push_back(fn * BATON_CLASSES + cls);
      fds.push_back(fd);
    }
  }
  uint32_t count = keys.size();
  if (count > 0 && bpf_map_update_batch(bpf_map__fd(skel_->maps.baton_queues), keys.data(), fds.data(), &count, nullptr)) {
    int e = errno;
    // the first `count` went in: take them out again, so nothing half-made stays behind
    for (uint32_t i = 0; i < count; i++) bpf_map_delete_elem(bpf_map__fd(skel_->maps.baton_queues), &keys[i]);
    undo();
    BpfError(env, "installing the late-binding queues", e).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  for (size_t i = 0; i < keys.size(); i++) queues_[keys[i]] = fds[i];
  return env.Undefined();
}

// (fnId, class, a 64-byte Buffer): the fd of that function's queue of that class.
int Dataplane::QueueFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!skel_) {
    MakeError(env, "BATON_ERR_CLOSED", "the data plane is closed", 0).ThrowAsJavaScriptException();
    return -1;
  }
  if (info.Length() < 3 || !info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsBuffer() ||
      info[2].As<Napi::Buffer<uint8_t>>().Length() != sizeof(struct baton_raw_desc)) {
    Napi::TypeError::New(env, "(fnId, class, a 64-byte Buffer)").ThrowAsJavaScriptException();
    return -1;
  }
  uint32_t fn = info[0].As<Napi::Number>().Uint32Value();
  uint32_t cls = info[1].As<Napi::Number>().Uint32Value();
  auto q = cls < BATON_CLASSES ? queues_.find(fn * BATON_CLASSES + cls) : queues_.end();
  if (q == queues_.end()) {
    Napi::RangeError::New(env, "no queue for function " + std::to_string(fn) + " class " + std::to_string(cls)).ThrowAsJavaScriptException();
    return -1;
  }
  return q->second;
}

// queuePush(fnId, class, desc) -> false when the queue is full.
Napi::Value Dataplane::QueuePush(const Napi::CallbackInfo& info) {
  int fd = QueueFd(info);
  if (fd < 0) return info.Env().Undefined();
  if (bpf_map_update_elem(fd, nullptr, info[2].As<Napi::Buffer<uint8_t>>().Data(), BPF_ANY) == 0)
    return Napi::Boolean::New(info.Env(), true);
  if (errno == E2BIG) return Napi::Boolean::New(info.Env(), false);
  BpfError(info.Env(), "queueing a descriptor", errno).ThrowAsJavaScriptException();
  return info.Env().Undefined();
}

// queuePop(fnId, class, into) -> false when the queue is empty; else the oldest is in `into`.
Napi::Value Dataplane::QueuePop(const Napi::CallbackInfo& info) {
  int fd = QueueFd(info);
  if (fd < 0) return info.Env().Undefined();
  if (bpf_map_lookup_and_delete_elem(fd, nullptr, info[2].As<Napi::Buffer<uint8_t>>().Data()) == 0)
    return Napi::Boolean::New(info.Env(), true);
  if (errno == ENOENT) return Napi::Boolean::New(info.Env(), false);
  BpfError(info.Env(), "taking a queued descriptor", errno).ThrowAsJavaScriptException();
  return info.Env().Undefined();
}

Napi::Value Dataplane::Close(const Napi::CallbackInfo& info) {
  closed_ = true;  // a load still running destroys what it loaded
  Destroy();
  return info.Env().Undefined();
}

}  // namespace baton
