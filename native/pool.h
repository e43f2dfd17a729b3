#pragma once
#include <napi.h>

namespace baton {
Napi::Value CreatePool(const Napi::CallbackInfo& info);
Napi::Value MapPool(const Napi::CallbackInfo& info);
}  // namespace baton
