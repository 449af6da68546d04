/* Error codes shared by every module: functions return 0 or a negative skiff_err. */
#ifndef SKIFF_ERR_H
#define SKIFF_ERR_H

enum skiff_err {
    SKIFF_OK = 0,
    SKIFF_AGAIN = -1, /* a parser needs more input */
    SKIFF_ENOMEM = -2,
    SKIFF_EINVAL = -3,  /* bad input; the caller reports it */
    SKIFF_ETOOBIG = -4, /* a bounded buffer would grow past its maximum */
    SKIFF_EIO = -5,     /* a system call failed */
};

#endif
