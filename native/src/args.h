// SPDX-License-Identifier: GPL-2.0
// Argument checks for the exported functions: a wrong type is a TypeError
// thrown at the call, before anything reaches the kernel.
#pragma once

#include <napi.h>

#include <cstdint>
#include <string>

namespace lklfs {

// A path as the kernel sees it: a Buffer's bytes as they are (file names
// need not be UTF-8), or a string's UTF-8.
inline std::string PathValue(Napi::Env env, Napi::Value v, const std::string &what) {
  std::string s;
  if (v.IsBuffer())
    s.assign(v.As<Napi::Buffer<char>>().Data(), v.As<Napi::Buffer<char>>().Length());
  else if (v.IsString())
    s = v.As<Napi::String>().Utf8Value();
  else
    throw Napi::TypeError::New(env, what + " must be a path (string or Buffer)");
  if (s.find('\0') != std::string::npos) throw Napi::TypeError::New(env, "path must not contain NUL bytes");
  return s;
}

inline std::string PathArg(const Napi::CallbackInfo &info, size_t i) {
  return PathValue(info.Env(), info[i], "argument " + std::to_string(i));
}

inline std::string StringArg(const Napi::CallbackInfo &info, size_t i) {
  if (!info[i].IsString())
    throw Napi::TypeError::New(info.Env(), "argument " + std::to_string(i) + " must be a string");
  return info[i].As<Napi::String>().Utf8Value();
}

inline int64_t IntArg(const Napi::CallbackInfo &info, size_t i) {
  Napi::Value v = info[i];
  if (v.IsBigInt()) {
    bool lossless;
    int64_t n = v.As<Napi::BigInt>().Int64Value(&lossless);
    if (lossless) return n;
  } else if (v.IsNumber()) {
    double d = v.As<Napi::Number>().DoubleValue();
    if (d == static_cast<double>(static_cast<int64_t>(d))) return static_cast<int64_t>(d);
  }
  throw Napi::TypeError::New(info.Env(), "argument " + std::to_string(i) + " must be an integer");
}

inline bool BoolArg(const Napi::CallbackInfo &info, size_t i) {
  if (!info[i].IsBoolean())
    throw Napi::TypeError::New(info.Env(), "argument " + std::to_string(i) + " must be a boolean");
  return info[i].As<Napi::Boolean>().Value();
}

// A Buffer and a byte range inside it.
struct Span {
  Napi::Buffer<char> buffer;
  char *data;
  size_t length;
};

inline Span SpanArg(const Napi::CallbackInfo &info, size_t i) {
  if (!info[i].IsBuffer())
    throw Napi::TypeError::New(info.Env(), "argument " + std::to_string(i) + " must be a Buffer");
  auto b = info[i].As<Napi::Buffer<char>>();
  int64_t off = IntArg(info, i + 1), len = IntArg(info, i + 2);
  if (off < 0 || len < 0 || static_cast<uint64_t>(off + len) > b.Length())
    throw Napi::RangeError::New(info.Env(), "offset and length must lie inside the Buffer");
  return {b, b.Data() + off, static_cast<size_t>(len)};
}

}  // namespace lklfs
