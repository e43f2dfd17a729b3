#pragma once
#include <napi.h>

namespace baton {
Napi::Value DieWithParent(const Napi::CallbackInfo& info);
Napi::Value NoNewPrivileges(const Napi::CallbackInfo& info);
Napi::Value SchedYield(const Napi::CallbackInfo& info);
Napi::Value StopLoopIdleTime(const Napi::CallbackInfo& info);
}  // namespace baton
