#include "base/name.h"

static int
alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

int
skiff_model_name_ok(const char *s, size_t n)
{
    if (n == 0 || n > 128 || !alnum(s[0]))
        return 0;
    for (size_t i = 1; i < n; i++)
        if (!alnum(s[i]) && s[i] != '-' && s[i] != '.' && s[i] != '_')
            return 0;
    return 1;
}
