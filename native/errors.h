// Typed errors for JS: every failure carries a stable BATON_ERR_* code and the errno, and
// says what to do. src/native/index.ts turns the code into an error class.
#pragma once
#include <napi.h>
#include <cerrno>
#include <cstring>
#include <string>

namespace baton {

inline Napi::Error MakeError(Napi::Env env, const char* code, const std::string& message, int err) {
  std::string text = message;
  if (err) text += ": " + std::string(strerror(err));
  Napi::Error e = Napi::Error::New(env, text);
  e.Set("code", Napi::String::New(env, code));
  e.Set("errno", Napi::Number::New(env, err));
  return e;
}

// Classifies a failed bpf() call: missing privilege and missing kernel features get their
// own codes so callers (and tests) can tell "cannot run here" from "bug".
inline Napi::Error BpfError(Napi::Env env, const std::string& what, int err) {
  if (err == EPERM || err == EACCES)
    return MakeError(env, "BATON_ERR_NO_PRIVILEGE",
                     what + " needs eBPF privilege (run as root or grant CAP_BPF and CAP_NET_ADMIN)", err);
  if (err == EINVAL || err == EOPNOTSUPP || err == ENOTSUP || err == ENOSYS || err == E2BIG)
    return MakeError(env, "BATON_ERR_KERNEL_FEATURE",
                     what + " failed: this kernel lacks BPF sockmap/SK_MSG support (Linux >= 5.8 with CONFIG_BPF_STREAM_PARSER)", err);
  return MakeError(env, "BATON_ERR_NATIVE", what + " failed", err);
}

inline void ThrowErrno(Napi::Env env, const std::string& what) {
  MakeError(env, "BATON_ERR_NATIVE", what + " failed", errno).ThrowAsJavaScriptException();
}

}  // namespace baton
