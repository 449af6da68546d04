#include "base/list.h"

#include <string.h>

static int
is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

int
skiff_list_next(const char **cursor, const char **item, size_t *len)
{
    const char *s = *cursor, *end;
    if (!s)
        return 0;
    end = strchr(s, ',');
    *cursor = end ? end + 1 : NULL;
    if (!end)
        end = s + strlen(s);
    while (s < end && is_blank(*s))
        s++;
    while (end > s && is_blank(end[-1]))
        end--;
    *item = s;
    *len = (size_t)(end - s);
    return 1;
}

size_t
skiff_list_count(const char *list)
{
    const char *item;
    size_t len, n = 0;
    while (skiff_list_next(&list, &item, &len))
        n += len > 0;
    return n;
}
