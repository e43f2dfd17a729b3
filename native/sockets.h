#pragma once
#include <napi.h>

namespace baton {
Napi::Value TcpPair(const Napi::CallbackInfo& info);
Napi::Value UnixPair(const Napi::CallbackInfo& info);
Napi::Value CloseFd(const Napi::CallbackInfo& info);
}  // namespace baton
