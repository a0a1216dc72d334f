// SPDX-License-Identifier: GPL-2.0
#include "tar_in_reader.h"

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstring>

#include "copy.h"

namespace lklfs {
namespace {

constexpr size_t kBlock = 512;
// Extended headers and long names larger than this are taken for corruption.
constexpr int64_t kMaxMeta = 64 << 20;
// The data ring, and the biggest piece of data in it: a file up to that
// size without holes is one entry, others one per piece.
constexpr size_t kRing = 8 << 20;
constexpr size_t kPiece = 1 << 20;
// Entries waiting: bounds the memory of names, targets and attributes.
constexpr size_t kQueueEntries = 8192;
// Headers are read a window at a time; larger data goes straight where it belongs.
constexpr size_t kWindow = 64 << 10;
constexpr int64_t kMaxSafe = (int64_t{1} << 53) - 1;
// Entries the writer waits for (or a quarter of the ring's data, see
// Wait()), and how often waits look
// at cancel() and at what came meanwhile.
constexpr size_t kBunch = 64;
constexpr std::chrono::milliseconds kGlance(5);
constexpr std::chrono::milliseconds kForever = std::chrono::milliseconds::max();

// A failure of the archive: the message is the whole of it.
struct ArchiveError {
  std::string message;
};

std::string CString(const char *block, int at, int len) {
  const char *nul = static_cast<const char *>(memchr(block + at, 0, len));
  return std::string(block + at, nul ? nul - (block + at) : len);
}

// A numeric header field: octal digits (spaces and NULs around them), or
// GNU's base-256 (first byte 0x80 positive, 0xff negative, big-endian).
// false when it is neither, or too large for a safe integer.
bool HeaderNumber(const char *block, int at, int len, int64_t *out) {
  auto byte = [&](int i) { return static_cast<unsigned char>(block[at + i]); };
  if (byte(0) == 0x80 || byte(0) == 0xff) {
    unsigned __int128 n = 0;
    for (int i = 1; i < len; i++) n = (n << 8) | byte(i);
    __int128 v = static_cast<__int128>(n);
    if (byte(0) == 0xff) v -= static_cast<__int128>(1) << (8 * (len - 1));
    if (v > kMaxSafe || v < -kMaxSafe) return false;
    *out = static_cast<int64_t>(v);
    return true;
  }
  int i = 0;
  while (i < len && byte(i) == 0x20) i++;
  int64_t n = 0;
  for (; i < len && byte(i) >= '0' && byte(i) <= '7'; i++) n = n * 8 + (byte(i) - '0');
  // Only spaces and NULs may follow the digits.
  for (; i < len; i++)
    if (byte(i) != 0 && byte(i) != 0x20) return false;
  *out = n;
  return true;
}

// Whether block's checksum is right (unsigned bytes, as POSIX says;
// signed, as some old tars summed).
bool ChecksumOk(const char *block) {
  int64_t want;
  if (!HeaderNumber(block, 148, 8, &want)) return false;
  // The checksum field itself counts as eight spaces.
  int64_t sum = 8 * 0x20, high = 0;
  for (size_t i = 0; i < kBlock; i++) {
    if (i >= 148 && i < 156) continue;
    unsigned char c = block[i];
    sum += c;
    high += c > 127;
  }
  return sum == want || sum - 256 * high == want;
}

bool AllZero(const char *block) {
  for (size_t i = 0; i < kBlock; i++)
    if (block[i]) return false;
  return true;
}

// Decimal digits only, as a safe integer; -1 when not.
int64_t Decimal(const std::string &s) {
  if (s.empty()) return -1;
  int64_t n = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return -1;
    n = n * 10 + (c - '0');
    if (n > kMaxSafe) return -1;
  }
  return n;
}

// A pax time ("1582979696.123456789", "-1.5") in nanoseconds.
bool PaxTime(const std::string &s, int64_t *ns) {
  size_t i = s[0] == '-' ? 1 : 0, dot = s.find('.');
  std::string whole = s.substr(i, dot == std::string::npos ? std::string::npos : dot - i);
  std::string frac = dot == std::string::npos ? "" : s.substr(dot + 1);
  if (whole.empty() || whole.size() > 10) return false;
  for (char c : whole + frac)
    if (c < '0' || c > '9') return false;
  frac = frac.substr(0, 9);
  frac.resize(9, '0');
  __int128 v = static_cast<__int128>(std::stoll(whole)) * 1000000000 + std::stoll(frac);
  if (v > INT64_MAX) return false;
  *ns = static_cast<int64_t>(i ? -v : v);
  return true;
}

// libarchive's attribute values: base64 (either alphabet), to the first "=".
std::string Base64(const std::string &s) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : s) {
    int v = c >= 'A' && c <= 'Z'   ? c - 'A'
            : c >= 'a' && c <= 'z' ? c - 'a' + 26
            : c >= '0' && c <= '9' ? c - '0' + 52
            : c == '+' || c == '-' ? 62
            : c == '/' || c == '_' ? 63
            : c == '=' ? -2 : -1;
    if (v == -2) break;
    if (v < 0) continue;
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return out;
}

int Hex(char c) {
  return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

// The attribute name in a SCHILY.xattr key (GNU tar escapes "%" and "="),
// or a LIBARCHIVE.xattr key (URL-encoded).
std::string Unescape(const std::string &s, bool url) {
  std::string out;
  for (size_t i = 0; i < s.size(); i++) {
    if (s[i] == '%' && i + 2 < s.size()) {
      int hi = Hex(s[i + 1]), lo = Hex(s[i + 2]);
      int c = hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
      if (c >= 0 && (url || c == 0x25 || c == 0x3d)) {
        out.push_back(static_cast<char>(c));
        i += 2;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

void SetXattr(Xattrs *xattrs, std::string name, std::string value) {
  for (auto &x : *xattrs)
    if (x.first == name) {
      x.second = std::move(value);
      return;
    }
  xattrs->emplace_back(std::move(name), std::move(value));
}

bool ValidUtf8(const std::string &s) {
  for (size_t i = 0; i < s.size();) {
    unsigned char c = s[i];
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (!n || i + n > s.size()) return false;
    uint32_t cp = n == 1 ? c : c & (0x7f >> n);
    for (size_t k = 1; k < n; k++) {
      unsigned char d = s[i + k];
      if ((d >> 6) != 2) return false;
      cp = (cp << 6) | (d & 0x3f);
    }
    static const uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += n;
  }
  return true;
}

}  // namespace

std::string ShowName(const std::string &name) {
  if (ValidUtf8(name)) return name;
  std::string out;
  for (unsigned char c : name) {
    if (c < 0x80) {
      out.push_back(c);
      continue;
    }
    char hex[5];
    snprintf(hex, sizeof(hex), "\\x%02x", c);
    out += hex;
  }
  return out;
}

struct TarReader::Sparse {
  bool has_name = false;
  std::string name;
  std::string major;
  int64_t real_size = -1;
  bool has_map = false;
  std::vector<std::pair<int64_t, int64_t>> map;
};

TarReader::TarReader(int fd, bool file, std::string label)
    : input_(fd, file, label), label_(std::move(label)), buf_(kWindow), ring_(new char[kRing]), thread_([this] { Run(); }) {}

TarReader::~TarReader() {
  {
    std::lock_guard<std::mutex> hold(lock_);
    stop_ = true;
  }
  input_.Stop();
  room_.notify_one();
  thread_.join();
}

// The two threads hand over in bunches, not an entry at a time (a wake
// per entry would cost more than the entry): the writer, once it has
// caught up, waits for a few entries (or a moment), the reader for a
// quarter of the ring and queue,
// which leaves the writer work for the while a busy machine takes to run
// the reader again.
TarItem *TarReader::Wait(std::chrono::milliseconds most) {
  std::unique_lock<std::mutex> hold(lock_);
  if (!queue_.empty()) return &queue_.front();
  // Caught up with the reader: back when a bunch is in.
  auto start = std::chrono::steady_clock::now();
  while (!done_ && !Cancelled()) {
    if (queue_.size() >= kBunch || queued_ >= kRing / 4) break;
    // The reader waits for room: what is there is all there will be.
    if (!queue_.empty() && reader_waiting_) break;
    if (most != kForever && std::chrono::steady_clock::now() - start >= most) break;
    writer_waiting_ = true;
    // cancel() (a signal) notifies nobody: looked at now and then.
    bool woken = ready_.wait_for(hold, kGlance) == std::cv_status::no_timeout;
    writer_waiting_ = false;
    if (!woken && !queue_.empty()) break;
  }
  return queue_.empty() ? nullptr : &queue_.front();
}

TarItem *TarReader::Front() { return Wait(kForever); }

TarItem *TarReader::FrontWithin(int ms) { return Wait(std::chrono::milliseconds(ms)); }

bool TarReader::Ended() {
  std::lock_guard<std::mutex> hold(lock_);
  return done_ && queue_.empty();
}

bool TarReader::EndedWithoutMarker() {
  std::lock_guard<std::mutex> hold(lock_);
  return without_marker_;
}

void TarReader::Pop() {
  std::lock_guard<std::mutex> hold(lock_);
  if (queue_.front().ring_end) given_ = queue_.front().ring_end;
  queued_ -= queue_.front().length;
  queue_.pop_front();
  if (reader_waiting_ && taken_ - given_ <= kRing / 4 * 3 && queue_.size() <= kQueueEntries / 4 * 3) {
    // Woken, if not yet running: the writer is not to wait on it.
    reader_waiting_ = false;
    room_.notify_one();
  }
}

// The reader waits (for room, see Wait()) until ready() or a stop.
template <typename Ready>
void TarReader::WaitRoom(std::unique_lock<std::mutex> &hold, Ready ready) {
  while (!stop_ && !Cancelled() && !ready()) {
    reader_waiting_ = true;
    if (writer_waiting_) ready_.notify_one();
    room_.wait_for(hold, kGlance);
    reader_waiting_ = false;
  }
  if (stop_ || Cancelled()) throw Stopped();
}

// length contiguous bytes of the ring, once given back; *end is where they end.
char *TarReader::TakeRing(size_t length, uint64_t *end) {
  std::unique_lock<std::mutex> hold(lock_);
  size_t at = taken_ % kRing;
  size_t gap = at + length > kRing ? kRing - at : 0;  // the ring's end is too short: start over
  WaitRoom(hold, [&] { return taken_ + gap + length - given_ <= kRing; });
  taken_ += gap + length;
  *end = taken_;
  return ring_.get() + (gap ? 0 : at);
}

void TarReader::Push(TarItem e) {
  std::unique_lock<std::mutex> hold(lock_);
  WaitRoom(hold, [&] { return queue_.size() < kQueueEntries; });
  bool last = e.kind == TarItem::Failed;
  queued_ += e.length;
  queue_.push_back(std::move(e));
  if (writer_waiting_ && (queue_.size() >= kBunch || queued_ >= kRing / 4 || last)) ready_.notify_one();
}

void TarReader::Run() {
  try {
    try {
      if (!input_.Start()) throw ArchiveError{input_.error()};
      while (NextEntry()) {
      }
    } catch (ArchiveError &e) {
      TarItem failed(TarItem::Failed);
      failed.error = std::move(e.message);
      Push(std::move(failed));
    }
  } catch (Stopped &) {
  }
  std::lock_guard<std::mutex> hold(lock_);
  done_ = true;
  ready_.notify_one();
}

// ---- The stream, read in exact amounts.

bool TarReader::Fill(size_t n) {
  while (Buffered() < n && !eof_) {
    if (buf_.size() - lo_ < n || buf_.size() - hi_ < kBlock) {
      memmove(buf_.data(), buf_.data() + lo_, Buffered());
      hi_ -= lo_;
      lo_ = 0;
      if (buf_.size() < n) buf_.resize(n);
    }
    long got = input_.Read(buf_.data() + hi_, buf_.size() - hi_);
    if (got < 0) SourceFailed();
    if (got == 0) eof_ = true;
    hi_ += got;
    received_ += got;
  }
  return Buffered() >= n;
}

const char *TarReader::Take(size_t n) {
  const char *at = buf_.data() + lo_;
  lo_ += n;
  pos_ += n;
  return at;
}

size_t TarReader::ReadInto(char *dst, size_t n) {
  size_t got = std::min(n, Buffered());
  memcpy(dst, Take(got), got);
  while (got < n && !eof_) {
    if (n - got < kWindow) {
      Fill(n - got);
      size_t len = std::min(n - got, Buffered());
      memcpy(dst + got, Take(len), len);
      got += len;
      continue;
    }
    long r = input_.Read(dst + got, n - got);
    if (r < 0) SourceFailed();
    if (r == 0) eof_ = true;
    got += r;
    pos_ += r;
    received_ += r;
  }
  return got;
}

uint64_t TarReader::Skip(uint64_t n) {
  uint64_t got = std::min<uint64_t>(n, Buffered());
  Take(got);
  if (got < n && input_.Seekable()) {
    uint64_t s = input_.Skip(n - got);
    pos_ += s;
    received_ += s;
    got += s;
    if (got < n) eof_ = true;
  }
  while (got < n && Fill(1)) {
    uint64_t len = std::min<uint64_t>(n - got, Buffered());
    Take(len);
    got += len;
  }
  return got;
}

void TarReader::Drain() {
  if (input_.Seekable()) Skip(UINT64_MAX >> 1);
  while (Fill(1)) Take(Buffered());
}

// ---- Messages.

int64_t TarReader::Number(const char *block, int off, int len, const char *what, int64_t at) {
  int64_t n;
  if (!HeaderNumber(block, off, len, &n)) throw ArchiveError{Corrupt(at, std::string("a header with a bad ") + what + " field")};
  return n;
}

// A number that must be a count: not negative.
int64_t TarReader::Safe(int64_t n, const char *what, int64_t at) {
  if (n < 0) throw ArchiveError{Corrupt(at, std::string("a ") + what + " of " + std::to_string(n))};
  return n;
}

std::string TarReader::Corrupt(int64_t at, const std::string &what) {
  std::string after = has_previous_ ? "after entry " + ShowName(previous_) : "its first entry";
  return label_ + ": corrupt archive: " + what + " at byte " + std::to_string(at) + " (" + after + ")";
}

// The stream ended at byte at, in the middle of what (of the current
// entry, or of the headers at byte header).
void TarReader::Truncated(int64_t at, const std::string &what, int64_t header) {
  std::string where;
  if (in_entry_)
    where = "entry " + ShowName(current_) + " (header at byte " + std::to_string(current_offset_) +
            ") is cut short: the archive ends at byte " + std::to_string(at) + ", in " + what;
  else
    where = "the archive ends at byte " + std::to_string(at) + ", in " + what +
            (header < 0 ? "" : " (header at byte " + std::to_string(header) + ")") +
            (has_previous_ ? ", after entry " + ShowName(previous_) : "");
  throw ArchiveError{label_ + ": truncated archive: " + where};
}

// A failure of the stream itself (a read error, a decompressor that gave
// up), placed in the archive.
void TarReader::SourceFailed() {
  std::string where = in_entry_ ? "in entry " + ShowName(current_) + " (header at byte " + std::to_string(current_offset_) + ")"
                      : has_previous_ ? "after entry " + ShowName(previous_)
                                      : "before its first entry";
  throw ArchiveError{input_.error() + " (at byte " + std::to_string(received_) + " of the tar stream, " + where + ")"};
}

// ---- Entries.

// The next entry and its data, queued; false at the end of the archive.
bool TarReader::NextEntry() {
  if (in_entry_) SkipData();
  std::vector<Record> local;
  std::string long_name, long_link;
  bool has_long_name = false, has_long_link = false;
  int64_t start = -1;
  for (;;) {
    int64_t at = pos_;
    if (start < 0) start = at;
    if (!Fill(kBlock)) {
      if (at == 0 && Buffered() == 0) throw ArchiveError{label_ + ": not a tar archive (it is empty)"};
      if (Buffered() > 0 || start != at) Truncated(End(), "a header", start);
      std::lock_guard<std::mutex> hold(lock_);
      without_marker_ = true;
      return false;
    }
    char block[kBlock];
    memcpy(block, Take(kBlock), kBlock);
    bool ok = ChecksumOk(block);
    if (!ok && AllZero(block)) {
      if (start != at) throw ArchiveError{Corrupt(at, "an end-of-archive block where an entry was expected")};
      // The end: a second zero block (or nothing), then padding to the record's end.
      Drain();
      return false;
    }
    if (!ok) {
      if (at == 0) throw ArchiveError{label_ + ": not a tar archive (no tar header at its start)"};
      throw ArchiveError{Corrupt(at, "a header with a bad checksum")};
    }
    char type = block[156];
    int64_t size = Number(block, 124, 12, "size", at);
    if (type == 'x' || type == 'X' || type == 'g') {
      std::vector<Record> records = ParseRecords(Body(size, at, "extended header"), at);
      auto &into = type == 'g' ? global_ : local;
      into.insert(into.end(), records.begin(), records.end());
      continue;
    }
    if (type == 'L' || type == 'K') {
      std::string body = Body(size, at, type == 'L' ? "long name" : "long link name");
      std::string value = body.substr(0, body.find('\0'));
      if (type == 'L') {
        long_name = std::move(value);
        has_long_name = true;
      } else {
        long_link = std::move(value);
        has_long_link = true;
      }
      continue;
    }
    if (type == 'V') {
      // A volume label: nothing to extract.
      Body(size, at, "volume label");
      start = -1;
      continue;
    }
    if (type == 'M') throw ArchiveError{Corrupt(at, "a multi-volume continuation, which tar2fs does not read")};
    Entry(block, type, size, local, has_long_name ? &long_name : nullptr, has_long_link ? &long_link : nullptr, start, at);
    return true;
  }
}

void TarReader::Entry(const char *block, char type, int64_t size, std::vector<Record> &local, const std::string *long_name,
                      const std::string *long_link, int64_t start, int64_t at) {
  bool ustar = !memcmp(block + 257, "ustar\0", 6);
  bool gnu = !memcmp(block + 257, "ustar  \0", 8);
  std::string name = CString(block, 0, 100);
  std::string prefix = ustar ? CString(block, 345, 155) : "";
  if (!prefix.empty()) name = prefix + "/" + name;
  TarItem::Kind kind = TarItem::File;
  uint32_t node = 0;
  bool known = true;
  switch (type) {
    case '0': case '\0': case '7': case 'S': kind = TarItem::File; break;
    case '1': kind = TarItem::Link; break;
    case '2': kind = TarItem::Symlink; break;
    case '3': kind = TarItem::Node, node = S_IFCHR; break;
    case '4': kind = TarItem::Node, node = S_IFBLK; break;
    case '5': case 'D': kind = TarItem::Dir; break;
    case '6': kind = TarItem::Node, node = S_IFIFO; break;
    default: known = false;
  }
  // Old archives mark directories by a trailing slash only.
  if ((type == '0' || type == '\0') && !name.empty() && name.back() == '/') kind = TarItem::Dir;
  TarItem e(kind);
  e.node_type = node;
  e.name = long_name ? *long_name : name;
  if (!known) e.unknown_type = type ? type : ' ';
  e.mode = Number(block, 100, 8, "mode", at) & 07777;
  e.uid = Safe(Number(block, 108, 8, "uid", at), "uid", at);
  e.gid = Safe(Number(block, 116, 8, "gid", at), "gid", at);
  int64_t mtime = Number(block, 136, 12, "mtime", at);
  e.mtime_ns = std::clamp<int64_t>(mtime, -9000000000, 9000000000) * 1000000000;
  bool has_link = kind == TarItem::Symlink || kind == TarItem::Link;
  if (has_link) e.link = long_link ? *long_link : CString(block, 157, 100);
  if (node == S_IFCHR || node == S_IFBLK) {
    e.dev_major = Number(block, 329, 8, "devmajor", at);
    e.dev_minor = Number(block, 337, 8, "devminor", at);
  }
  int64_t stored = size;
  bool has_atime = false;
  Sparse sparse;
  for (auto *records : {&global_, &local})
    for (const Record &r : *records) {
      if (r.key == "atime") has_atime = true;
      if (r.key == "linkpath" && !has_link) continue;
      int64_t s = ApplyRecord(e, r, sparse, at);
      if (s >= 0) stored = s;
    }
  if (!has_atime) e.atime_ns = e.mtime_ns;
  if (sparse.has_name) e.name = sparse.name;
  if (gnu && type == 'S') sparse = OldGnuSparse(block, at);
  // Data is stored for regular files, and skipped for hard links and
  // directories that carry some; the other kinds have none, whatever their size says.
  bool has_data = kind == TarItem::File || kind == TarItem::Link || kind == TarItem::Dir;
  remaining_ = has_data ? Safe(stored, "size", at) : 0;
  padding_ = (kBlock - remaining_ % kBlock) % kBlock;
  in_entry_ = true;
  current_ = e.name;
  current_offset_ = start;
  has_previous_ = true;
  previous_ = e.name;
  if (kind != TarItem::File) return Push(std::move(e));
  int64_t file_size = remaining_;
  if (sparse.major == "1") {
    sparse.map = SparseMap(e, at);
    sparse.has_map = true;
  }
  if (!sparse.has_map) return Data(std::move(e), {{0, file_size}});
  file_size = Safe(sparse.real_size >= 0 ? sparse.real_size : remaining_, "sparse file size", at);
  CheckMap(sparse.map, e, file_size, at);
  e.offset = file_size;
  Data(std::move(e), sparse.map);
}

// A regular file (its offset: its whole size) and its data extents,
// queued: one entry when small and whole, else pieces and an end.
void TarReader::Data(TarItem e, const std::vector<std::pair<int64_t, int64_t>> &extents) {
  int64_t size = extents.size() == 1 && extents[0].first == 0 && e.offset == 0 ? extents[0].second : -1;
  auto read = [&](TarItem *into, int64_t offset, size_t length) {
    into->data = length ? TakeRing(length, &into->ring_end) : nullptr;
    into->length = length;
    into->offset = offset;
    if (ReadInto(const_cast<char *>(into->data), length) < length) Truncated(pos_, "its data");
    remaining_ -= length;
  };
  if (size >= 0 && size <= static_cast<int64_t>(kPiece)) {
    read(&e, 0, size);
    return Push(std::move(e));
  }
  int64_t file_size = size >= 0 ? size : e.offset;
  e.pieces = true;
  Push(std::move(e));
  for (auto [off, len] : extents)
    for (int64_t done = 0; done < len;) {
      TarItem piece(TarItem::Piece);
      size_t n = std::min<int64_t>(kPiece, len - done);
      read(&piece, off + done, n);
      done += n;
      Push(std::move(piece));
    }
  TarItem end(TarItem::FileEnd);
  end.offset = file_size;
  Push(std::move(end));
}

// Applies one extended header record to e: a new stored size, or -1.
int64_t TarReader::ApplyRecord(TarItem &e, const Record &r, Sparse &sparse, int64_t at) {
  auto bad = [&] { return ArchiveError{Corrupt(at, "an extended header with a bad " + r.key + " value")}; };
  auto decimal = [&] {
    int64_t n = Decimal(r.value);
    if (n < 0) throw bad();
    return n;
  };
  auto time = [&] {
    int64_t ns;
    if (r.value.empty() || !PaxTime(r.value, &ns)) throw bad();
    return ns;
  };
  const std::string &k = r.key;
  if (k == "path") e.name = r.value;
  else if (k == "linkpath") e.link = r.value;
  else if (k == "size") return decimal();
  else if (k == "uid") e.uid = decimal();
  else if (k == "gid") e.gid = decimal();
  else if (k == "mtime") e.mtime_ns = time();
  else if (k == "atime") e.atime_ns = time();
  else if (k == "SCHILY.devmajor") e.dev_major = decimal();
  else if (k == "SCHILY.devminor") e.dev_minor = decimal();
  else if (k == "SCHILY.acl.access") {
    e.has_acl_access = true;
    e.acl_access = r.value;
  } else if (k == "SCHILY.acl.default") {
    e.has_acl_default = true;
    e.acl_default = r.value;
  } else if (k == "GNU.sparse.name") {
    sparse.has_name = true;
    sparse.name = r.value;
  } else if (k == "GNU.sparse.size" || k == "GNU.sparse.realsize")
    sparse.real_size = decimal();
  else if (k == "GNU.sparse.major")
    sparse.major = r.value;
  else if (k == "GNU.sparse.offset") {
    sparse.has_map = true;
    sparse.map.emplace_back(decimal(), 0);
  } else if (k == "GNU.sparse.numbytes") {
    if (sparse.map.empty() || sparse.map.back().second != 0)
      throw ArchiveError{Corrupt(at, "a sparse map with a length before its offset")};
    sparse.map.back().second = decimal();
  } else if (k == "GNU.sparse.map") {
    std::vector<int64_t> nums;
    for (size_t from = 0; from <= r.value.size();) {
      size_t comma = std::min(r.value.find(',', from), r.value.size());
      std::string n = r.value.substr(from, comma - from);
      from = comma + 1;
      if (n.empty()) continue;
      for (char c : n)
        if (c < '0' || c > '9') throw ArchiveError{Corrupt(at, "a bad GNU.sparse.map")};
      // Too big for a safe integer: CheckMap refuses it.
      nums.push_back(n.size() > 16 ? -1 : Decimal(n));
    }
    if (nums.size() % 2) throw ArchiveError{Corrupt(at, "a bad GNU.sparse.map")};
    sparse.has_map = true;
    sparse.map.clear();
    for (size_t i = 0; i < nums.size(); i += 2) sparse.map.emplace_back(nums[i], nums[i + 1]);
  } else if (k.rfind("SCHILY.xattr.", 0) == 0)
    SetXattr(&e.xattrs, Unescape(k.substr(13), false), r.value);
  else if (k.rfind("LIBARCHIVE.xattr.", 0) == 0)
    SetXattr(&e.xattrs, Unescape(k.substr(17), true), Base64(r.value));
  return -1;
}

// GNU's old sparse format: the map in the header, then in extension blocks.
TarReader::Sparse TarReader::OldGnuSparse(const char *block, int64_t at) {
  Sparse s;
  s.has_map = true;
  auto entries = [&](const char *b, int from, int count) {
    for (int i = 0; i < count; i++) {
      int off = from + 24 * i;
      if (b[off] == 0) break;
      int64_t o = Safe(Number(b, off, 12, "sparse offset", at), "sparse offset", at);
      int64_t l = Safe(Number(b, off + 12, 12, "sparse length", at), "sparse length", at);
      s.map.emplace_back(o, l);
    }
  };
  entries(block, 386, 4);
  bool extended = block[482] != 0;
  while (extended) {
    if (!Fill(kBlock)) Truncated(End(), "its sparse map", at);
    const char *ext = Take(kBlock);
    entries(ext, 0, 21);
    extended = ext[504] != 0;
  }
  s.real_size = Number(block, 483, 12, "sparse file size", at);
  return s;
}

// GNU sparse 1.0: the map at the start of the data, in decimal lines, padded to a block.
std::vector<std::pair<int64_t, int64_t>> TarReader::SparseMap(const TarItem &e, int64_t at) {
  std::string text;
  std::vector<int64_t> numbers;
  int64_t want = -1;
  while (want < 0 || static_cast<int64_t>(numbers.size()) < want) {
    if (remaining_ < static_cast<int64_t>(kBlock))
      throw ArchiveError{Corrupt(at, "entry " + ShowName(e.name) + " with a sparse map longer than its data")};
    if (!Fill(kBlock)) Truncated(End(), "its sparse map");
    text.append(Take(kBlock), kBlock);
    remaining_ -= kBlock;
    size_t from = 0;
    for (size_t nl; (nl = text.find('\n', from)) != std::string::npos && (want < 0 || static_cast<int64_t>(numbers.size()) < want);) {
      std::string line = text.substr(from, nl - from);
      from = nl + 1;
      bool digits = !line.empty() && line.find_first_not_of("0123456789") == std::string::npos;
      if (!digits) throw ArchiveError{Corrupt(at, "entry " + ShowName(e.name) + " with a bad sparse map")};
      int64_t n = line.size() > 16 ? -1 : Decimal(line);
      if (want < 0) want = n < 0 || n > (1 << 24) ? -2 : 1 + 2 * n;
      if (want == -2) throw ArchiveError{Corrupt(at, "entry " + ShowName(e.name) + " with a bad sparse map")};
      numbers.push_back(n);
    }
    text.erase(0, from);
  }
  std::vector<std::pair<int64_t, int64_t>> map;
  for (size_t i = 1; i + 1 < numbers.size(); i += 2) map.emplace_back(numbers[i], numbers[i + 1]);
  return map;
}

// The map must be in order, inside the file, and account for the data stored.
void TarReader::CheckMap(const std::vector<std::pair<int64_t, int64_t>> &map, const TarItem &e, int64_t size, int64_t at) {
  int64_t end = 0, data = 0;
  for (auto [off, len] : map) {
    if (off < 0 || len < 0 || off < end || off + len > size)
      throw ArchiveError{Corrupt(at, "entry " + ShowName(e.name) + " with a bad sparse map")};
    end = off + len;
    data += len;
  }
  if (data != remaining_)
    throw ArchiveError{Corrupt(at, "entry " + ShowName(e.name) + " whose sparse map accounts for " + std::to_string(data) +
                                       " bytes of its " + std::to_string(remaining_))};
}

// An extended header's or long name's body.
std::string TarReader::Body(int64_t size, int64_t at, const std::string &what) {
  if (size > kMaxMeta) throw ArchiveError{Corrupt(at, "a " + what + " of " + std::to_string(size) + " bytes")};
  size_t padded = size + (kBlock - size % kBlock) % kBlock;
  if (!Fill(padded)) Truncated(End(), "a " + what, at);
  std::string body(Take(padded), size);
  return body;
}

// The records of an extended header body, in order (a key may repeat: GNU
// sparse 0.0 lists its map that way); NUL bytes after the last record
// (padding some writers leave) end the body.
std::vector<TarReader::Record> TarReader::ParseRecords(const std::string &body, int64_t at) {
  std::vector<Record> out;
  auto bad = [&](const std::string &why) { return ArchiveError{Corrupt(at, "a bad extended header (" + why + ")")}; };
  for (size_t from = 0; from < body.size() && body[from] != 0;) {
    size_t space = body.find(' ', from);
    std::string digits = space == std::string::npos ? "" : body.substr(from, space - from);
    int64_t len = digits.size() >= 1 && digits.size() <= 12 ? Decimal(digits) : -1;
    std::string offset = std::to_string(from);
    if (len <= static_cast<int64_t>(digits.size()) + 1 || from + len > body.size() || body[from + len - 1] != '\n')
      throw bad("malformed extended header record at offset " + offset + " of its body");
    size_t eq = body.find('=', space + 1);
    if (eq == std::string::npos || eq >= from + len - 1)
      throw bad("extended header record without \"=\" at offset " + offset + " of its body");
    out.push_back({body.substr(space + 1, eq - space - 1), body.substr(eq + 1, from + len - 1 - eq - 1)});
    from += len;
  }
  return out;
}

// What is left of the entry's data (none of a file's), and its padding.
void TarReader::SkipData() {
  uint64_t want = remaining_ + padding_;
  int64_t at = pos_;
  uint64_t got = Skip(want);
  if (got < want) Truncated(at + got, "its data");
  remaining_ = 0;
  padding_ = 0;
  in_entry_ = false;
}

}  // namespace lklfs
