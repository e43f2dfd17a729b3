// Entry point: wires the native pieces into one module. Nothing here holds state; each
// Dataplane object owns its own skeleton, so the module is safe to load in worker
// processes (which only map the pool) and in several environments.
#include <napi.h>

#include <cstddef>

#include "dataplane.h"
#include "endpoint.h"
#include "baton_shared.h"
#include "pool.h"
#include "process.h"
#include "sockets.h"

namespace baton {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("Dataplane", Dataplane::Init(env));
  exports.Set("RawSocket", RawSocket::Init(env));
  exports.Set("createPool", Napi::Function::New(env, CreatePool));
  exports.Set("mapPool", Napi::Function::New(env, MapPool));
  exports.Set("tcpPair", Napi::Function::New(env, TcpPair));
  exports.Set("unixPair", Napi::Function::New(env, UnixPair));
  exports.Set("closeFd", Napi::Function::New(env, CloseFd));
  exports.Set("dieWithParent", Napi::Function::New(env, DieWithParent));
  exports.Set("noNewPrivileges", Napi::Function::New(env, NoNewPrivileges));
  exports.Set("schedYield", Napi::Function::New(env, SchedYield));
  exports.Set("stopLoopIdleTime", Napi::Function::New(env, StopLoopIdleTime));
  // the layout contract with the TypeScript side, checked when the addon loads
  Napi::Object layout = Napi::Object::New(env);
  layout.Set("descSize", Napi::Number::New(env, BATON_DESC_SIZE));
  layout.Set("descMagic", Napi::Number::New(env, BATON_DESC_MAGIC));
  layout.Set("descVersion", Napi::Number::New(env, BATON_DESC_VERSION));
  layout.Set("maxKeys", Napi::Number::New(env, BATON_MAX_KEYS));
  layout.Set("fnAddr", Napi::Number::New(env, static_cast<double>(BATON_FN_ADDR)));
  layout.Set("maxFunctions", Napi::Number::New(env, BATON_MAX_FUNCTIONS));
  layout.Set("idleWords", Napi::Number::New(env, BATON_IDLE_WORDS));
  layout.Set("idleStride", Napi::Number::New(env, BATON_IDLE_STRIDE));
  layout.Set("idleEntry", Napi::Number::New(env, sizeof(struct baton_idle)));
  layout.Set("holderQueued", Napi::Number::New(env, static_cast<double>(BATON_HOLDER_QUEUED)));
  layout.Set("custodyGen", Napi::Number::New(env, offsetof(struct baton_custody, gen)));
  layout.Set("maxSlots", Napi::Number::New(env, BATON_MAX_SLOTS));
  layout.Set("gatewayFn", Napi::Number::New(env, BATON_GATEWAY_FN));
  layout.Set("custodyEntry", Napi::Number::New(env, static_cast<double>(sizeof(struct baton_custody))));
  layout.Set("classes", Napi::Number::New(env, BATON_CLASSES));
  layout.Set("classShift", Napi::Number::New(env, BATON_CLASS_SHIFT));
  exports.Set("layout", layout);
  return exports;
}

}  // namespace baton

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return baton::Init(env, exports); }

NODE_API_MODULE(baton, InitModule)
