// The shared-memory pool: one memfd, mapped MAP_SHARED into every process of a chain and
// exposed to JS as an external ArrayBuffer (no copy; writes are seen by all processes).
#include "pool.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errors.h"

namespace baton {

namespace {

bool ReadSize(const Napi::CallbackInfo& info, size_t index, size_t* size) {
  if (info.Length() <= index || !info[index].IsNumber()) {
    Napi::TypeError::New(info.Env(), "size must be a number").ThrowAsJavaScriptException();
    return false;
  }
  double s = info[index].As<Napi::Number>().DoubleValue();
  if (!(s > 0) || s > 64.0 * 1024 * 1024 * 1024) {
    Napi::RangeError::New(info.Env(), "pool size must be between 1 byte and 64 GiB").ThrowAsJavaScriptException();
    return false;
  }
  *size = static_cast<size_t>(s);
  return true;
}

// Maps fd and wraps the mapping; the finalizer unmaps once JS drops the last reference,
// so no view can outlive the memory it points at.
Napi::Value MapAsArrayBuffer(Napi::Env env, int fd, size_t size) {
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) {
    ThrowErrno(env, "mmap of the pool");
    return env.Undefined();
  }
  return Napi::ArrayBuffer::New(env, p, size, [size](Napi::Env, void* data) { munmap(data, size); });
}

}  // namespace

// createPool(size) -> { fd, buffer }
Napi::Value CreatePool(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  size_t size;
  if (!ReadSize(info, 0, &size)) return env.Undefined();
  int fd = memfd_create("baton-pool", MFD_CLOEXEC);
  if (fd < 0) {
    ThrowErrno(env, "memfd_create");
    return env.Undefined();
  }
  if (ftruncate(fd, static_cast<off_t>(size)) != 0) {
    int e = errno;
    close(fd);
    MakeError(env, "BATON_ERR_NATIVE", "sizing the pool memfd failed", e).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Value buffer = MapAsArrayBuffer(env, fd, size);
  if (env.IsExceptionPending()) {
    close(fd);
    return env.Undefined();
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("fd", Napi::Number::New(env, fd));
  out.Set("buffer", buffer);
  return out;
}

// mapPool(fd, size) -> ArrayBuffer, for a process that inherited the pool's fd. The memfd must
// be at least `size` bytes: touching a mapping beyond its end would kill the process (SIGBUS).
Napi::Value MapPool(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) {
    Napi::TypeError::New(env, "fd must be a number").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  size_t size;
  if (!ReadSize(info, 1, &size)) return env.Undefined();
  int fd = info[0].As<Napi::Number>().Int32Value();
  struct stat st;
  if (fstat(fd, &st)) {
    ThrowErrno(env, "fstat of the pool");
    return env.Undefined();
  }
  if (static_cast<size_t>(st.st_size) < size) {
    MakeError(env, "BATON_ERR_POOL", "the pool is smaller than its announced geometry", 0).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return MapAsArrayBuffer(env, fd, size);
}

}  // namespace baton
