// Entry point: wires the native pieces into one module. Nothing here holds state; each
// Dataplane object owns its own skeleton, so the module is safe to load in worker
// processes (which only map the pool) and in several environments.
#include <napi.h>

#include "dataplane.h"
#include "pool.h"
#include "sockets.h"

namespace baton {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("Dataplane", Dataplane::Init(env));
  exports.Set("createPool", Napi::Function::New(env, CreatePool));
  exports.Set("mapPool", Napi::Function::New(env, MapPool));
  exports.Set("tcpPair", Napi::Function::New(env, TcpPair));
  exports.Set("closeFd", Napi::Function::New(env, CloseFd));
  exports.Set("descriptorSize", Napi::Number::New(env, 64));
  return exports;
}

}  // namespace baton

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return baton::Init(env, exports); }

NODE_API_MODULE(baton, InitModule)
