// Typed errors for JS: every failure carries a stable BATON_ERR_* code and the errno; the
// message says which step failed. src/native/index.ts turns the code into a BatonError,
// whose table message (src/errors.ts) says what to do.
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

// Classifies a failed bpf() call: missing privilege gets its own code, and so does a missing
// kernel feature — but only for opening, loading and attaching the program (`loading`), where
// an EINVAL means the kernel does not know what we ask; later it means a bug of ours.
inline Napi::Error BpfError(Napi::Env env, const std::string& what, int err, bool loading = false) {
  if (err == EPERM || err == EACCES)
    return MakeError(env, "BATON_ERR_NO_PRIVILEGE", what, err);
  if (loading && (err == EINVAL || err == EOPNOTSUPP || err == ENOTSUP || err == ENOSYS || err == E2BIG))
    return MakeError(env, "BATON_ERR_KERNEL_FEATURE", what, err);
  return MakeError(env, "BATON_ERR_NATIVE", what, err);
}

inline void ThrowErrno(Napi::Env env, const std::string& what) {
  MakeError(env, "BATON_ERR_NATIVE", what, errno).ThrowAsJavaScriptException();
}

}  // namespace baton
