// SPDX-License-Identifier: GPL-2.0
#include "tar_format.h"

#include <cstdio>
#include <cstring>

namespace lklfs {
namespace tar {
namespace {

size_t Digits(size_t n) {
  size_t d = 1;
  for (; n >= 10; n /= 10) d++;
  return d;
}

// The length of a record with a key and value of these lengths.
size_t RecordLength(size_t key, size_t value) {
  size_t body = key + value + 3;  // " ", "=", "\n"
  size_t d = Digits(body);
  while (Digits(body + d) > d) d++;
  return body + d;
}

// value in n octal digits and a space at p, all 7s when it does not fit;
// returns the bytes' sum (for the checksum).
unsigned Octal(char *p, uint64_t value, int n) {
  unsigned sum = ' ';
  p[n] = ' ';
  if (value >> (3 * n)) {
    memset(p, '7', n);
    return sum + n * '7';
  }
  for (int i = n - 1; i >= 0; i--, value >>= 3) {
    p[i] = '0' + (value & 7);
    sum += p[i];
  }
  return sum;
}

unsigned Bytes(char *p, std::string_view s) {
  unsigned sum = 0;
  for (size_t i = 0; i < s.size(); i++) {
    p[i] = s[i];
    sum += static_cast<unsigned char>(s[i]);
  }
  return sum;
}

}  // namespace

void PutHeader(char *b, const Ustar &h) {
  memset(b, 0, kBlock);
  unsigned sum = 8 * ' ';  // the checksum field counts as spaces
  sum += Bytes(b, h.name);
  sum += Octal(b + 100, h.mode & 07777, 6);
  sum += Octal(b + 108, h.uid, 6);
  sum += Octal(b + 116, h.gid, 6);
  if (h.size > kMaxSize) {
    // Base-256: a marker byte, then the size big-endian.
    b[124] = static_cast<char>(0x80);
    sum += 0x80;
    uint64_t n = h.size;
    for (int i = 11; i > 0; i--, n >>= 8) {
      b[124 + i] = static_cast<char>(n & 0xff);
      sum += n & 0xff;
    }
  } else {
    sum += Octal(b + 124, h.size, 11);
  }
  sum += Octal(b + 136, h.mtime, 11);
  b[156] = h.type;
  sum += h.type;
  sum += Bytes(b + 157, h.link);
  sum += Bytes(b + 257, std::string_view("ustar\0" "00", 8));
  if (h.device) {
    // tar-stream wrote devices in 6 digits, which cannot hold a minor over
    // 262143; fs2tar wrote them again as 7 digits and a NUL (GNU tar knows
    // no pax record for them), the checksum then as digits, NUL, space.
    sum += Octal(b + 329, h.major, 7) - ' ' + Octal(b + 337, h.minor, 7) - ' ';
    b[336] = b[344] = 0;
    Octal(b + 148, sum, 6);
    b[154] = 0;
    b[155] = ' ';
  } else {
    sum += Octal(b + 329, 0, 6) + Octal(b + 337, 0, 6);
    Octal(b + 148, sum, 6);
  }
}

void AddRecord(std::string *body, std::string_view key, std::string_view value) {
  body->append(std::to_string(RecordLength(key.size(), value.size())));
  body->push_back(' ');
  body->append(key);
  body->push_back('=');
  body->append(value);
  body->push_back('\n');
}

void PadBody(std::string *body) {
  size_t gap = (kBlock - body->size() % kBlock) % kBlock;
  if (gap == 0) return;
  // The shortest comment is "12 comment=\n"; a gap of exactly 100 cannot
  // be filled either (a 97-byte body makes a 99-byte record): a block on.
  for (size_t size = gap;; size += kBlock) {
    if (size < 12) continue;
    size_t dots = size - Digits(size) - 10;
    if (RecordLength(7, dots) != size) continue;
    AddRecord(body, "comment", std::string(dots, '.'));
    return;
  }
}

std::string Time(int64_t sec, long nsec) {
  std::string out;
  uint64_t whole = sec;
  if (sec < 0) {
    // -1.5 s is sec -2, nsec 500000000.
    out = "-";
    whole = nsec ? -static_cast<uint64_t>(sec) - 1 : -static_cast<uint64_t>(sec);
    nsec = nsec ? 1000000000 - nsec : 0;
  }
  out += std::to_string(whole);
  if (nsec == 0) return out;
  char frac[16];
  int len = snprintf(frac, sizeof(frac), ".%09ld", nsec);
  while (frac[len - 1] == '0') len--;
  return out.append(frac, len);
}

int64_t UstarTime(int64_t sec, long nsec) {
  // Truncated toward zero, none before 1970, 32 bits.
  int64_t s = sec < 0 && nsec > 0 ? sec + 1 : sec;
  return s < 0 ? 0 : s > kMaxSeconds ? kMaxSeconds : s;
}

std::string XattrKey(std::string_view name) {
  std::string key = "SCHILY.xattr.";
  for (char c : name) {
    if (c == '%')
      key += "%25";
    else if (c == '=')
      key += "%3D";
    else
      key += c;
  }
  return key;
}

bool AclText(std::string_view x, std::string *text) {
  auto u16 = [&](size_t at) { return static_cast<unsigned>(static_cast<unsigned char>(x[at]) | static_cast<unsigned char>(x[at + 1]) << 8); };
  auto u32 = [&](size_t at) { return static_cast<uint32_t>(u16(at) | u16(at + 2) << 16); };
  // A little-endian u32 version (2), then 8-byte entries: u16 tag, u16 perm, u32 id.
  if (x.size() < 4 || (x.size() - 4) % 8 != 0 || u32(0) != 2) return false;
  text->clear();
  for (size_t at = 4; at < x.size(); at += 8) {
    unsigned tag = u16(at), perm = u16(at + 2);
    const char *name = tag == 0x01 || tag == 0x02 ? "user"
                       : tag == 0x04 || tag == 0x08 ? "group"
                       : tag == 0x10 ? "mask"
                       : tag == 0x20 ? "other"
                                     : nullptr;
    if (!name) return false;
    *text += name;
    *text += ':';
    // Named users and groups by number: the image's ids are not the host's.
    if (tag == 0x02 || tag == 0x08) *text += std::to_string(u32(at + 4));
    *text += ':';
    *text += perm & 4 ? 'r' : '-';
    *text += perm & 2 ? 'w' : '-';
    *text += perm & 1 ? 'x' : '-';
    *text += '\n';
  }
  return true;
}

std::string_view Field(std::string_view bytes, std::string_view key, std::string *body, std::string *standin) {
  bool ascii = true;
  for (char c : bytes) ascii = ascii && static_cast<unsigned char>(c) < 0x80;
  if (ascii && bytes.size() <= kNameField) return bytes;
  AddRecord(body, key, bytes);
  standin->assign(bytes.substr(0, kNameField));
  for (char &c : *standin)
    if (static_cast<unsigned char>(c) >= 0x80) c = '_';
  return *standin;
}

}  // namespace tar
}  // namespace lklfs
