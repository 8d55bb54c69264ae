/* tests/unit/hostile.c - the shared table of hostile network strings; see
 * hostile.h. */
#include "hostile.h"

#include <string.h>

/* A 10,000-byte HELO: "a.a.a.a...", valid characters, absurd length. */
static char long_helo[HOSTILE_LONG_LEN + 1];
/* 1,000 '%': worst case for enc_reply()'s doubling. */
static char many_percent[1000 + 1];
/* 10,000 bytes cycling through every value 0x01..0xff. */
static char all_bytes[HOSTILE_LONG_LEN + 1];
/* 10,000 bytes of "<a@" so an address parser never finds its end. */
static char long_addr[HOSTILE_LONG_LEN + 1];
/* 5,000 CR LF pairs. */
static char many_crlf[HOSTILE_LONG_LEN + 1];

#define H(name, lit)                                                                               \
	{                                                                                          \
		name, lit, sizeof(lit) - 1                                                         \
	}

const struct hostile hostile_strings[] = {
	H("crlf reply injection", "a\r\n250 OK"),
	H("format directives", "100%s%n"),
	H("embedded NUL", "abc\0\r\nRCPT TO:<x@y>"),
	{ "10,000-byte HELO", long_helo, HOSTILE_LONG_LEN },
	H("invalid UTF-8", "\xff\xfe\xc3\x28"),
	H("header injection", "x\n\tInjected: 1"),
	H("bare CR", "\r"),
	H("bare LF", "\n"),
	H("TAB", "\t"),
	H("DEL", "\x7f"),
	H("empty", ""),
	H("lone percent", "%"),
	H("ANSI escape", "\x1b[31mred\x1b[0m"),
	H("backspaces", "ok\b\b\b\bevil"),
	H("only white space", " \t \r\n "),
	H("8-bit latin1", "caf\xe9"),
	H("overlong UTF-8 NUL", "\xc0\x80"),
	H("UTF-8 BOM", "\xef\xbb\xbfhello"),
	H("smtp in address", "<a@b>\r\nDATA\r\n"),
	H("header in address", "<a@b\r\nBcc: victim@example.org>"),
	H("quoted CRLF", "<\"a\r\nb\"@example.org>"),
	H("brackets only", "<"),
	H("many brackets", "<<<<<<<<>>>>>>>>"),
	H("backslash run", "\\\\\\\\\\x00"),
	H("printf width", "%999999999s%*d%hhn"),
	H("high control C1", "\x85\x9b\xa0"),
	{ "1,000 percent signs", many_percent, 1000 },
	{ "every byte value", all_bytes, HOSTILE_LONG_LEN },
	{ "10,000-byte open address", long_addr, HOSTILE_LONG_LEN },
	{ "5,000 CRLF", many_crlf, HOSTILE_LONG_LEN },
	{ NULL, NULL, 0 },
};

void hostile_init(void)
{
	size_t i;

	for (i = 0; i < HOSTILE_LONG_LEN; i++) {
		long_helo[i] = (i % 2) ? '.' : 'a';
		all_bytes[i] = (char)(1 + i % 255);
		long_addr[i] = "<a@"[i % 3];
		many_crlf[i] = (i % 2) ? '\n' : '\r';
	}
	long_helo[HOSTILE_LONG_LEN - 1] = 'a';
	long_helo[HOSTILE_LONG_LEN] = '\0';
	all_bytes[HOSTILE_LONG_LEN] = '\0';
	long_addr[HOSTILE_LONG_LEN] = '\0';
	many_crlf[HOSTILE_LONG_LEN] = '\0';
	memset(many_percent, '%', 1000);
	many_percent[1000] = '\0';
}
