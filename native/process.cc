// Process hygiene for function workers: a worker must die with its gateway whatever state it
// is in (stopped by SIGSTOP, spinning in a loop, blocked at import), so the kernel is asked
// to SIGKILL it when its parent exits. Nothing in the worker's JS has to run for that.
#include "process.h"

#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>
#include <uv.h>

#include "errors.h"

namespace baton {

// dieWithParent(parentPid): SIGKILL this process when its parent exits. If the parent is
// already gone (it died before this call), exits at once.
Napi::Value DieWithParent(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) {
    Napi::TypeError::New(env, "dieWithParent(parentPid)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0)) {
    ThrowErrno(env, "prctl(PR_SET_PDEATHSIG)");
    return env.Undefined();
  }
  if (getppid() != info[0].As<Napi::Number>().Int32Value()) raise(SIGKILL);
  return env.Undefined();
}

// noNewPrivileges(): no exec of this process or its children gains privileges (setuid
// binaries, file capabilities) from here on.
Napi::Value NoNewPrivileges(const Napi::CallbackInfo& info) {
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) ThrowErrno(info.Env(), "prctl(PR_SET_NO_NEW_PRIVS)");
  return info.Env().Undefined();
}

// schedYield(): lets another runnable process have this CPU (a spinning event loop calls it
// between polls, so spinning never keeps a process with work off the CPU).
Napi::Value SchedYield(const Napi::CallbackInfo& info) {
  sched_yield();
  return info.Env().Undefined();
}

// stopLoopIdleTime(): the event loop stops measuring its idle time, which Node turns on at
// start (UV_METRICS_IDLE_TIME, for performance.eventLoopUtilization()): measuring makes every
// wait for events two system calls, a poll that does not wait, then the one that does. A worker
// waits once per descriptor it serves. libuv offers no switch back: the flag is cleared in its
// loop's internal fields, whose first member is the flags word in every libuv 1.x that has the
// option (1.39 on); nothing is touched unless that word holds exactly the known flag bits.
// Returns whether the loop measured and no longer does.
Napi::Value StopLoopIdleTime(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || !loop || !loop->internal_fields) return Napi::Boolean::New(env, false);
  unsigned int* flags = static_cast<unsigned int*>(loop->internal_fields);
  const unsigned int kIdleTime = UV_METRICS_IDLE_TIME;  // the option's value is its flag bit
  if (UV_VERSION_MAJOR != 1 || uv_version() < ((1u << 16) | (39u << 8)) || (*flags & ~kIdleTime) != 0 || !(*flags & kIdleTime)) {
    return Napi::Boolean::New(env, false);
  }
  *flags &= ~kIdleTime;
  return Napi::Boolean::New(env, true);
}

}  // namespace baton
