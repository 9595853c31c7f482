/* scratch.h — scratch directories and files for the unit tests that need
 * them (include after cmocka.h). Header-only: each test is its own binary. */
#ifndef BLOOMSYNC_TESTS_SCRATCH_H
#define BLOOMSYNC_TESTS_SCRATCH_H

#include <ftw.h>
#include <stdio.h>
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

#endif
