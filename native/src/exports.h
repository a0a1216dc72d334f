// SPDX-License-Identifier: GPL-2.0
// Each source file registers its functions on the module's exports.
#pragma once

#include <napi.h>

namespace lklfs {

void RegisterKernel(Napi::Env env, Napi::Object exports);
void RegisterPaths(Napi::Env env, Napi::Object exports);
void RegisterFiles(Napi::Env env, Napi::Object exports);
void RegisterCopy(Napi::Env env, Napi::Object exports);
void RegisterHost(Napi::Env env, Napi::Object exports);
void RegisterBatch(Napi::Env env, Napi::Object exports);
void RegisterTarOut(Napi::Env env, Napi::Object exports);
void RegisterTreeCopyIn(Napi::Env env, Napi::Object exports);
void RegisterTarCopyIn(Napi::Env env, Napi::Object exports);
void RegisterTreeCopyOut(Napi::Env env, Napi::Object exports);
// FUSE mounts (fuse_serve.cc), in builds that had libfuse3's headers.
void RegisterFuse(Napi::Env env, Napi::Object exports);

// Node is exiting during a FUSE mount: the host's cached writes are taken
// in, the mount ended and its files closed, before the kernel shuts down.
void FuseShutdown();

// Node is exiting with the kernel still up (the engine halts it itself;
// this is for an exit in between): unmount what is mounted, so that every
// filesystem is left clean, and halt.
void KernelShutdown();

}  // namespace lklfs
