// SPDX-License-Identifier: GPL-2.0
// The bytes of a POSIX (pax) tar archive as fs2tar writes them: ustar
// header blocks and pax extended header records. The layout is byte for
// byte what tar-stream wrote when it framed fs2tar's entries (octal fields
// of n digits and a space, the checksum as digits, space, NUL, extended
// headers named "PaxHeader" whose bodies are padded with a comment record),
// so archives stay the same from one version to the next.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace lklfs {
namespace tar {

constexpr size_t kBlock = 512;
// What ustar's fields hold: owners in 6 octal digits, sizes in 11 (larger
// ones in base-256, which only GNU readers know), 32-bit seconds, names of
// 100 bytes.
constexpr uint64_t kMaxId = 0777777;
constexpr uint64_t kMaxSize = 077777777777;
constexpr int64_t kMaxSeconds = (int64_t{1} << 31) - 1;
constexpr size_t kNameField = 100;

struct Ustar {
  std::string_view name;  // ASCII, at most 100 bytes
  char type;              // '0' file, '1' hard link, '2' symlink, ... 'x' extended header
  uint32_t mode, uid, gid;
  uint64_t size;
  int64_t mtime;          // whole seconds, 0 to kMaxSeconds
  std::string_view link;  // ASCII, at most 100 bytes
  bool device = false;    // major and minor: each under 8^7 (Linux's are 12 and 20 bits)
  uint32_t major = 0, minor = 0;
};

// The 512-byte header h at block.
void PutHeader(char *block, const Ustar &h);

// Appends "<len> <key>=<value>\n" to *body; len counts its own digits.
void AddRecord(std::string *body, std::string_view key, std::string_view value);

// Pads *body to a multiple of 512 bytes with a "comment" record (readers
// ignore it, by POSIX) rather than zeros: at most 512 + 511 bytes more.
void PadBody(std::string *body);

// Seconds and nanoseconds (0 to 999999999, the seconds floored) as pax
// writes times: "1582979696.123456789", "-1.5", "7".
std::string Time(int64_t sec, long nsec);

// Whole seconds as a ustar header holds them (the pax record is exact).
int64_t UstarTime(int64_t sec, long nsec);

// The record key of an extended attribute; GNU tar escapes "%" and "=".
std::string XattrKey(std::string_view name);

// A POSIX ACL as the kernel stores it (system.posix_acl_access/default)
// as the text GNU tar --acls keeps ("user::rw-\nuser:1000:r--\n...",
// numeric ids); false for bytes that are not an ACL.
bool AclText(std::string_view xattr, std::string *text);

// The ustar field for a name or link target: the bytes themselves when
// ASCII and at most 100 long; otherwise a record (key) in *body carries
// them exactly, and the field gets a stand-in (the first 100 bytes, '_'
// for those not ASCII), in *standin, that only readers without pax use.
std::string_view Field(std::string_view bytes, std::string_view key, std::string *body, std::string *standin);

}  // namespace tar
}  // namespace lklfs
