// SPDX-License-Identifier: GPL-2.0
#include "tar_input.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "copy.h"

extern char **environ;

namespace lklfs {
namespace {

// What the first bytes say; the last three are known and refused.
struct Magic {
  const char *name;
  const char *bytes;
  size_t length;
};
const Magic kMagic[] = {
    {"gzip", "\x1f\x8b", 2},
    {"xz", "\xfd\x37\x7a\x58\x5a\x00", 6},
    {"zstd", "\x28\xb5\x2f\xfd", 4},
    {"bzip2", "\x42\x5a\x68", 3},
    {"lz4", "\x04\x22\x4d\x18", 4},
    {"lzip", "\x4c\x5a\x49\x50", 4},
};

// The host programs, their arguments and the Debian packages that have them.
struct HostTool {
  const char *name;
  const char *args[4];
  const char *package;
};
const HostTool kTools[] = {
    // -T0: xz 5.4 decompresses multi-block files on every core.
    {"xz", {"xz", "-dc", "-T0", nullptr}, "xz-utils"},
    {"zstd", {"zstd", "-dcq", nullptr, nullptr}, "zstd"},
};

constexpr size_t kInflateIn = 256 << 10;
// How often a blocked read looks at cancel() (a signal).
constexpr int kPollMs = 100;

// A pipe holds 64 KiB: a wider one (what an unprivileged process may ask
// for) lets the writer run ahead and both sides wake a sixteenth as often.
// Not a pipe, or not allowed: as it is.
void WidenPipe(int fd) { fcntl(fd, F_SETPIPE_SZ, 1 << 20); }

std::string Describe(int err) {
  const char *name = strerrorname_np(err);
  return std::string(name ? name : "error") + ": " + strerror(err);
}

}  // namespace

struct ArchiveInput::Inflate {
  z_stream z = {};
  std::vector<unsigned char> in = std::vector<unsigned char>(kInflateIn);
  bool member_ended = false;
};

ArchiveInput::ArchiveInput(int fd, bool file, std::string label)
    : fd_(fd), file_(file), label_(std::move(label)), wake_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

ArchiveInput::~ArchiveInput() {
  Stop();
  if (feeder_.joinable()) feeder_.join();
  if (child_ > 0) waitpid(child_.load(), nullptr, 0);
  for (int fd : {out_, err_, in_, wake_})
    if (fd >= 0) close(fd);
  if (z_) inflateEnd(&z_->z);
}

void ArchiveInput::Stop() {
  stopped_ = true;
  if (child_ > 0) kill(child_, SIGTERM);
  uint64_t one = 1;
  if (write(wake_, &one, sizeof(one)) < 0) {
    // Already woken: the counter is full.
  }
}

long ArchiveInput::Fail(const std::string &why) {
  if (error_.empty()) error_ = why;
  return -1;
}

bool ArchiveInput::Start() {
  if (file_) {
    struct stat st;
    if (fstat(fd_, &st) < 0) return Fail("cannot read " + label_ + ": " + Describe(errno)) == 0;
    size_ = st.st_size;
  } else {
    WidenPipe(fd_);
  }
  // Six bytes tell every compression (fewer: the stream is that short).
  char start[6];
  size_t got = 0;
  std::string why;
  while (got < sizeof(start)) {
    long n = RawRead(start + got, sizeof(start) - got, &why);
    if (n < 0) return Fail(why) == 0;
    if (n == 0) break;
    got += n;
  }
  head_.assign(start, got);
  raw_ended_ = false;
  for (const Magic &m : kMagic) {
    if (got < m.length || memcmp(start, m.bytes, m.length)) continue;
    if (!strcmp(m.name, "gzip")) {
      z_ = std::make_unique<Inflate>();
      // 16 + MAX_WBITS: a gzip header and trailer around the deflate data.
      if (inflateInit2(&z_->z, 16 + MAX_WBITS) != Z_OK) return Fail("cannot decompress " + label_ + " (gzip): out of memory") == 0;
      kind_ = Gzip;
      return true;
    }
    if (!strcmp(m.name, "xz") || !strcmp(m.name, "zstd")) return StartTool(m.name);
    std::string name = m.name;
    return Fail(label_ + " is compressed with " + name + ", which tar2fs does not read: decompress it into a pipe (" + name +
                " -dc " + label_ + " | lklfs tar2fs ...)") == 0;
  }
  return true;
}

// The input as it is: the bytes read to tell the compression first. A
// failure says why in *why (Feed() runs it on a thread of its own).
long ArchiveInput::RawRead(char *buf, size_t n, std::string *why) {
  if (head_at_ < head_.size()) {
    size_t len = std::min(n, head_.size() - head_at_);
    memcpy(buf, head_.data() + head_at_, len);
    head_at_ += len;
    return len;
  }
  if (raw_ended_) return 0;
  long got = 0;
  if (file_ && offset_ < size_) {
    do got = pread(fd_, buf, std::min<uint64_t>(n, size_ - offset_), offset_);
    while (got < 0 && errno == EINTR);
    if (got < 0) {
      *why = "cannot read " + label_ + ": " + Describe(errno);
      return -1;
    }
    offset_ += got;
  } else if (!file_) {
    got = WaitRead(fd_, buf, n);
    if (got == -2) {
      *why = "cannot read " + label_ + ": " + Describe(errno);
      return -1;
    }
  }
  if (got == 0) raw_ended_ = true;
  return got;
}

// read() of a pipe that wakes for Stop() and cancel(): a count, 0 at the
// end (or stopped), -2 with errno set.
long ArchiveInput::WaitRead(int fd, char *buf, size_t n) {
  for (;;) {
    if (stopped_ || Cancelled()) return 0;
    struct pollfd p[2] = {{fd, POLLIN, 0}, {wake_, POLLIN, 0}};
    int ready = poll(p, 2, kPollMs);
    if (ready < 0 && errno != EINTR) return -2;
    if (ready <= 0 || !(p[0].revents & (POLLIN | POLLHUP | POLLERR))) continue;
    long got = read(fd, buf, n);
    if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    return got < 0 ? -2 : got;
  }
}

uint64_t ArchiveInput::Skip(uint64_t n) {
  uint64_t from_head = std::min<uint64_t>(n, head_.size() - head_at_);
  head_at_ += from_head;
  uint64_t rest = std::min<uint64_t>(n - from_head, size_ - std::min(offset_, size_));
  offset_ += rest;
  return from_head + rest;
}

long ArchiveInput::Read(char *buf, size_t n) {
  if (!error_.empty()) return -1;
  switch (kind_) {
    case None: {
      std::string why;
      long got = RawRead(buf, n, &why);
      return got < 0 ? Fail(why) : got;
    }
    case Gzip:
      return GzipRead(buf, n);
    case Tool:
      return ToolRead(buf, n);
  }
  return -1;
}

// gzip, member after member as gzip -d reads them; what follows the last
// member that is not another is left, as Node's gunzip leaves it.
long ArchiveInput::GzipRead(char *buf, size_t n) {
  z_stream &z = z_->z;
  z.next_out = reinterpret_cast<unsigned char *>(buf);
  z.avail_out = n;
  auto fail = [&](const char *why) { return Fail("cannot decompress " + label_ + " (gzip): " + why); };
  while (z.avail_out == n) {
    if (z.avail_in == 0 && !raw_ended_) {
      std::string why;
      long got = RawRead(reinterpret_cast<char *>(z_->in.data()), z_->in.size(), &why);
      if (got < 0) return Fail(why);
      z.next_in = z_->in.data();
      z.avail_in = got;
      if (stopped_) return 0;
    }
    if (z_->member_ended) {
      if (z.avail_in == 0) {
        if (raw_ended_) return 0;
        continue;
      }
      if (z.next_in[0] != 0x1f) return 0;
      inflateReset(&z);
      z_->member_ended = false;
    }
    int ret = inflate(&z, Z_NO_FLUSH);
    if (ret == Z_STREAM_END)
      z_->member_ended = true;
    else if (ret == Z_BUF_ERROR || (ret == Z_OK && z.avail_in == 0 && raw_ended_ && z.avail_out == n)) {
      if (raw_ended_ && z.avail_in == 0) return fail("unexpected end of file");
    } else if (ret != Z_OK)
      return fail(z.msg ? z.msg : "corrupt data");
  }
  return n - z.avail_out;
}

bool ArchiveInput::StartTool(const char *name) {
  const HostTool *tool = nullptr;
  for (const HostTool &t : kTools)
    if (!strcmp(t.name, name)) tool = &t;
  tool_ = tool->name;
  kind_ = Tool;
  auto failed = [&](const std::string &why) { return Fail("cannot decompress " + label_ + " (" + tool_ + "): " + why) == 0; };
  int out[2], err[2], in[2] = {-1, -1};
  if (pipe2(out, O_CLOEXEC) < 0) return failed(strerror(errno));
  if (pipe2(err, O_CLOEXEC) < 0) {
    close(out[0]);
    close(out[1]);
    return failed(strerror(errno));
  }
  // A file is the program's own input, from its start; a pipe has given
  // its first bytes to us: they and the rest go through a pipe of ours.
  if (!file_ && pipe2(in, O_CLOEXEC) < 0) {
    for (int fd : {out[0], out[1], err[0], err[1]}) close(fd);
    return failed(strerror(errno));
  }
  int input = file_ ? fd_ : in[0];
  if (file_) lseek(fd_, 0, SEEK_SET);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, input, 0);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err[1], 2);
  pid_t pid = 0;
  int ret = posix_spawnp(&pid, tool->args[0], &actions, nullptr, const_cast<char *const *>(tool->args), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(out[1]);
  close(err[1]);
  if (in[0] >= 0) close(in[0]);
  out_ = out[0];
  err_ = err[0];
  in_ = in[1];
  WidenPipe(out_);
  if (in_ >= 0) WidenPipe(in_);
  if (ret != 0)
    return failed(ret == ENOENT ? std::string(tool_) + " is not installed (Debian package " + tool->package + ")" : strerror(ret));
  child_ = pid;
  if (in_ >= 0) feeder_ = std::thread([this] { Feed(); });
  return true;
}

// The input into the program: its first bytes, then the rest as it comes.
void ArchiveInput::Feed() {
  std::vector<char> buf(256 << 10);
  for (;;) {
    long n = RawRead(buf.data(), buf.size(), &feed_error_);
    if (n < 0) {
      if (child_ > 0) kill(child_, SIGTERM);
      break;
    }
    if (n == 0) break;
    // The program stopped reading (it failed, or is done): its exit says.
    bool broken = false;
    for (long put = 0; put < n && !broken;) {
      long w = write(in_, buf.data() + put, n - put);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) broken = true;
      else put += w;
    }
    if (broken) break;
  }
  close(in_);
  in_ = -1;
}

long ArchiveInput::ToolRead(char *buf, size_t n) {
  for (;;) {
    if (stopped_ || Cancelled()) return 0;
    struct pollfd p[3] = {{out_, POLLIN, 0}, {err_, POLLIN, 0}, {wake_, POLLIN, 0}};
    int ready = poll(p, err_ >= 0 ? 3 : 1, kPollMs);
    if (ready < 0 && errno != EINTR) return Fail("cannot decompress " + label_ + " (" + tool_ + "): " + strerror(errno));
    if (ready <= 0) continue;
    if (err_ >= 0 && (p[1].revents & (POLLIN | POLLHUP | POLLERR))) {
      char tmp[1024];
      long got = read(err_, tmp, sizeof(tmp));
      if (got > 0 && stderr_.size() < 4096) stderr_.append(tmp, got);
      if (got == 0) {
        close(err_);
        err_ = -1;
      }
    }
    if (!(p[0].revents & (POLLIN | POLLHUP | POLLERR))) continue;
    long got = read(out_, buf, n);
    if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (got < 0) return Fail("cannot decompress " + label_ + " (" + tool_ + "): " + strerror(errno));
    return got > 0 ? got : ToolEnded();
  }
}

// The program's output has ended: how it exited tells whether that is the
// end of the stream.
long ArchiveInput::ToolEnded() {
  while (err_ >= 0) {
    char tmp[1024];
    long got = read(err_, tmp, sizeof(tmp));
    if (got < 0 && errno == EINTR) continue;
    if (got > 0 && stderr_.size() < 4096) stderr_.append(tmp, got);
    if (got <= 0) {
      close(err_);
      err_ = -1;
    }
  }
  // Waited for, then forgotten, then reaped: Stop() never signals a pid
  // that may have gone to another process.
  pid_t pid = child_;
  siginfo_t info;
  while (waitid(P_PID, pid, &info, WEXITED | WNOWAIT) < 0 && errno == EINTR) {
  }
  child_ = 0;
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (feeder_.joinable()) feeder_.join();
  if (!feed_error_.empty()) return Fail(feed_error_);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return 0;
  // The last line it wrote, else its exit status or signal.
  std::string why = stderr_;
  while (!why.empty() && isspace(static_cast<unsigned char>(why.back()))) why.pop_back();
  why = why.substr(why.find_last_of('\n') + 1);
  if (why.empty()) {
    const char *sig = WIFSIGNALED(status) ? sigabbrev_np(WTERMSIG(status)) : nullptr;
    why = std::string(tool_) + " exited with " +
          (WIFEXITED(status) ? std::to_string(WEXITSTATUS(status)) : sig ? std::string("SIG") + sig : "a signal");
  }
  return Fail("cannot decompress " + label_ + " (" + tool_ + "): " + why);
}

}  // namespace lklfs
