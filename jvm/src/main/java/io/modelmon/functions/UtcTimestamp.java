package io.modelmon.functions;

import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.data.StringData;
import org.apache.flink.table.data.TimestampData;
import org.apache.flink.table.functions.ScalarFunction;

/**
 * {@code UTC_TIMESTAMP(text)}: ISO-8601 UTC text as a TIMESTAMP(3), NULL for anything else.
 *
 * <p>Accepted: {@code yyyy-MM-dd}, {@code T} or a space, {@code HH:mm:ss}, optionally a fraction of 1 to 9
 * digits (cut to milliseconds), optionally {@code Z}, {@code +00:00} or {@code +0000}; a calendar date and a time
 * of day that exist (no {@code 2026-02-30}, no {@code 24:00:00}, no leap second, no year 0). Read with one pass
 * over the bytes: a regular expression and a cast cost many times more per record.
 */
public final class UtcTimestamp extends ScalarFunction {

    private static final long MILLIS_PER_DAY = 86_400_000L;

    public @DataTypeHint(value = "TIMESTAMP(3)", bridgedTo = TimestampData.class) TimestampData eval(
            @DataTypeHint(value = "STRING", bridgedTo = StringData.class) StringData text) {
        if (text == null) {
            return null;
        }
        byte[] b = text.toBytes();
        int n = b.length;
        if (n < 19 || b[4] != '-' || b[7] != '-' || (b[10] != 'T' && b[10] != ' ') || b[13] != ':' || b[16] != ':') {
            return null;
        }
        int year = digits(b, 0, 4);
        int month = digits(b, 5, 2);
        int day = digits(b, 8, 2);
        int hour = digits(b, 11, 2);
        int minute = digits(b, 14, 2);
        int second = digits(b, 17, 2);
        if (year < 1 || month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)
                || hour < 0 || hour > 23 || minute < 0 || minute > 59 || second < 0 || second > 59) {
            return null;  // also a non-digit, for which digits() is negative
        }
        int i = 19;
        int millis = 0;
        if (i < n && b[i] == '.') {
            int start = ++i;
            while (i < n && i - start < 9 && isDigit(b[i])) {
                if (i - start < 3) {
                    millis = millis * 10 + (b[i] - '0');
                }
                i++;
            }
            int count = i - start;
            if (count == 0) {
                return null;
            }
            for (int k = count; k < 3; k++) {
                millis *= 10;
            }
        }
        if (!isUtcSuffix(b, i, n)) {
            return null;
        }
        long epochDay = epochDay(year, month, day);
        long time = ((hour * 60L + minute) * 60L + second) * 1000L + millis;
        return TimestampData.fromEpochMillis(epochDay * MILLIS_PER_DAY + time);
    }

    /** Nothing, "Z", "+00:00" or "+0000" from i to the end. */
    private static boolean isUtcSuffix(byte[] b, int i, int n) {
        int rest = n - i;
        if (rest == 0) {
            return true;
        }
        if (rest == 1) {
            return b[i] == 'Z';
        }
        if ((rest != 5 && rest != 6) || b[i] != '+' || b[i + 1] != '0' || b[i + 2] != '0') {
            return false;
        }
        return (rest == 6 && b[i + 3] == ':' && b[i + 4] == '0' && b[i + 5] == '0')
                || (rest == 5 && b[i + 3] == '0' && b[i + 4] == '0');
    }

    private static boolean isDigit(byte c) {
        return c >= '0' && c <= '9';
    }

    /** The value of `count` ASCII digits at `from`, or -1 if one is not a digit. */
    private static int digits(byte[] b, int from, int count) {
        int value = 0;
        for (int i = from; i < from + count; i++) {
            if (!isDigit(b[i])) {
                return -1;
            }
            value = value * 10 + (b[i] - '0');
        }
        return value;
    }

    private static boolean isLeap(int year) {
        return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    }

    private static int daysInMonth(int year, int month) {
        switch (month) {
            case 2:
                return isLeap(year) ? 29 : 28;
            case 4:
            case 6:
            case 9:
            case 11:
                return 30;
            default:
                return 31;
        }
    }

    /** Days since 1970-01-01 of a proleptic Gregorian date (java.time's LocalDate.toEpochDay). */
    private static long epochDay(int year, int month, int day) {
        return java.time.LocalDate.of(year, month, day).toEpochDay();
    }
}
