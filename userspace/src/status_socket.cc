// SPDX-License-Identifier: GPL-2.0
//
// Status socket: server thread and client.
#include "status_socket.h"

#include <cerrno>
#include <cstring>
#include <exception>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

namespace hvio {

namespace {

// A client that does not read its report within this time is dropped:
// the status thread serves one connection at a time.
constexpr int kSendTimeoutMs = 2000;

bool make_addr(const std::string &path, sockaddr_un *a) {
    std::memset(a, 0, sizeof(*a));
    a->sun_family = AF_UNIX;
    if (path.empty() || path.size() >= sizeof(a->sun_path))
        return false;
    std::memcpy(a->sun_path, path.data(), path.size());
    return true;
}

Result<UniqueFd> connect_to(const std::string &path) {
    sockaddr_un a;
    if (!make_addr(path, &a))
        return Error(ENAMETOOLONG);
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd)
        return last_error();
    if (::connect(fd.get(), reinterpret_cast<sockaddr *>(&a), sizeof(a)) < 0)
        return last_error();
    return fd;
}

} // namespace

std::string error_report(const std::string &what) {
    // JSON string escaping of the few characters that need it; bytes that
    // are not plain ASCII are dropped, so the document is always valid.
    std::string out = "{\"error\": \"the daemon could not make its report: ";
    for (unsigned char ch : what) {
        if (ch == '"' || ch == '\\') {
            out += '\\';
            out += static_cast<char>(ch);
        } else if (ch >= 0x20 && ch < 0x7f) {
            out += static_cast<char>(ch);
        }
    }
    return out + "\"}\n";
}

StatusServer::~StatusServer() { stop(); }

Result<void> StatusServer::open(const std::string &path) {
    sockaddr_un a;
    if (!make_addr(path, &a))
        return Error(ENAMETOOLONG);
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd)
        return last_error();

    // Root-only: the report names images and zone layout.
    mode_t old = ::umask(077);
    int ret = ::bind(fd.get(), reinterpret_cast<sockaddr *>(&a), sizeof(a));
    if (ret < 0 && errno == ENOENT) {
        // Minimal root file systems may lack /run: create the directory
        // (one level, root-only like the socket).
        std::string dir = path.substr(0, path.find_last_of('/'));
        if (!dir.empty() && ::mkdir(dir.c_str(), 0755) == 0)
            ret = ::bind(fd.get(), reinterpret_cast<sockaddr *>(&a), sizeof(a));
        else
            errno = ENOENT;
    }
    if (ret < 0 && errno == EADDRINUSE) {
        if (connect_to(path).ok()) {
            ::umask(old);
            return Error(EADDRINUSE);
        }
        ::unlink(path.c_str()); // stale: its daemon is gone
        ret = ::bind(fd.get(), reinterpret_cast<sockaddr *>(&a), sizeof(a));
    }
    int err = errno;
    ::umask(old);
    if (ret < 0)
        return Error(err);
    path_ = path;
    if (::listen(fd.get(), 8) < 0) {
        err = errno;
        ::unlink(path.c_str());
        path_.clear();
        return Error(err);
    }
    listen_ = std::move(fd);
    return {};
}

Result<void> StatusServer::start(std::function<std::string()> report) {
    stop_efd_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!stop_efd_)
        return last_error();
    report_ = std::move(report);
    thread_ = std::thread([this] { serve(); });
    return {};
}

void StatusServer::serve() {
    for (;;) {
        pollfd p[2] = {{listen_.get(), POLLIN, 0}, {stop_efd_.get(), POLLIN, 0}};
        if (::poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        if (p[1].revents)
            return;
        if (!(p[0].revents & POLLIN))
            continue;
        UniqueFd c(::accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC));
        if (!c)
            continue;
        timeval tv{kSendTimeoutMs / 1000, (kSendTimeoutMs % 1000) * 1000};
        ::setsockopt(c.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        // A report that fails must not end the daemon (an exception
        // leaving this thread would terminate the process, I/O and all):
        // the client gets an error document instead.
        std::string out;
        try {
            out = report_();
        } catch (const std::exception &e) {
            out = error_report(e.what());
        } catch (...) {
            out = error_report("unknown exception");
        }
        size_t off = 0;
        while (off < out.size()) {
            ssize_t n = ::send(c.get(), out.data() + off, out.size() - off, MSG_NOSIGNAL);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            off += static_cast<size_t>(n);
        }
    }
}

void StatusServer::stop() {
    if (thread_.joinable()) {
        uint64_t one = 1;
        (void)!::write(stop_efd_.get(), &one, sizeof(one));
        thread_.join();
    }
    if (!path_.empty()) {
        ::unlink(path_.c_str());
        path_.clear();
    }
    listen_.reset();
}

Result<std::string> status_fetch(const std::string &path, pid_t *peer) {
    auto fd = connect_to(path);
    if (!fd)
        return Error(fd.error());
    if (peer) {
        // The process that listens on the socket, as the kernel saw it
        // (not what the report claims).
        ucred cred{};
        socklen_t len = sizeof(cred);
        if (::getsockopt(fd->get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
            return last_error();
        *peer = cred.pid;
    }
    std::string out;
    char buf[4096];
    for (;;) {
        ssize_t n = ::read(fd->get(), buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return last_error();
        if (n == 0)
            break;
        out.append(buf, static_cast<size_t>(n));
    }
    return out;
}

} // namespace hvio
