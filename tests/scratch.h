/* scratch.h — scratch directories, files and loopback ports for the unit
 * tests that need them (include after cmocka.h). Header-only: each test is
 * its own binary. */
#ifndef BLOOMSYNC_TESTS_SCRATCH_H
#define BLOOMSYNC_TESTS_SCRATCH_H

#include <arpa/inet.h>
#include <ftw.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <unistd.h>

/* Makes a new directory /tmp/NAME.XXXXXX, its path in dir. -1 on failure. */
static inline int scratch_dir_make(char *dir, size_t len, const char *name)
{
	snprintf(dir, len, "/tmp/%s.XXXXXX", name);
	return mkdtemp(dir) ? 0 : -1;
}

static inline int scratch_remove_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return (type == FTW_DP ? rmdir(path) : unlink(path)) == 0 ? 0 : -1;
}

/* Removes dir and everything below it. 0 when it is gone. */
static inline int scratch_dir_remove(const char *dir)
{
	return nftw(dir, scratch_remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* All of an open file, from its start, NUL-terminated (malloc'd); fails
 * the test when it cannot be read. */
static inline char *scratch_read_fd(int fd)
{
	off_t len = lseek(fd, 0, SEEK_END);
	assert_true(len >= 0);
	char *out = calloc(1, (size_t)len + 1);
	assert_non_null(out);
	assert_int_equal(pread(fd, out, (size_t)len, 0), (ssize_t)len);
	return out;
}

/* A small file's text (malloc'd, the first 4 KiB at most); NULL when it
 * cannot be opened. */
static inline char *scratch_read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	char *buf = calloc(1, 4096);
	if (buf && fread(buf, 1, 4095, f) == 0 && ferror(f)) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	return buf;
}

/* A TCP socket bound to a free port of 127.0.0.1 (in *port), listening
 * when asked: connections to it are accepted by the kernel and never
 * answered. Closed at once, the port is one that refuses connections. The
 * caller closes the returned descriptor. */
static inline int scratch_port(int *port, bool listening)
{
	struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = 0 };
	socklen_t len = sizeof addr;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof addr), 0);
	if (listening)
		assert_int_equal(listen(fd, 4), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&addr, &len), 0);
	*port = ntohs(addr.sin_port);
	return fd;
}

#endif
