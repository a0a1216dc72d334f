// SPDX-License-Identifier: GPL-2.0
// lklfs.node: the Linux kernel library for Node, one kernel per process.
#include "copy.h"
#include "exports.h"
#include "queue.h"

namespace lklfs {
namespace {

// Whatever was still going is given up (the process is ending): copies
// and batches stop, calls not yet started are dropped; then what is
// mounted is unmounted cleanly.
void AtExit(void *) {
  CancelAll();
#ifdef LKLFS_FUSE
  FuseShutdown();
#endif
  QueueStop();
  KernelShutdown();
}

// shutdown(): the same, synchronously, for process.on('exit'), which also
// runs when an uncaught exception ends the process (cleanup hooks don't).
Napi::Value Shutdown(const Napi::CallbackInfo &info) {
  AtExit(nullptr);
  return info.Env().Undefined();
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  QueueInit(env);
  napi_add_env_cleanup_hook(env, AtExit, nullptr);
  RegisterKernel(env, exports);
  RegisterPaths(env, exports);
  RegisterFiles(env, exports);
  RegisterCopy(env, exports);
  RegisterHost(env, exports);
  RegisterBatch(env, exports);
  RegisterTarOut(env, exports);
  RegisterTreeCopyIn(env, exports);
  RegisterTarCopyIn(env, exports);
  RegisterTreeCopyOut(env, exports);
#ifdef LKLFS_FUSE
  RegisterFuse(env, exports);
#endif
  exports.Set("shutdown", Napi::Function::New(env, Shutdown, "shutdown"));
  return exports;
}

}  // namespace lklfs

static Napi::Object InitLklfs(Napi::Env env, Napi::Object exports) { return lklfs::Init(env, exports); }

NODE_API_MODULE(lklfs, InitLklfs)
