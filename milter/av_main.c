/* milter/av_main.c - portcullis-av, the scanner helper program: libclamav
 * in a process of its own, started by portcullis (and portcullisctl check)
 * with --av-helper; see lib/av_helper.c.  Not for use by hand. */
#include "av.h"

int main(int argc, char **argv)
{
	return av_helper_main(argc, argv);
}
