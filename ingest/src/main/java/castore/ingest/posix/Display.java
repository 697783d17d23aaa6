package castore.ingest.posix;

import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;

/**
 * Renders raw name and path bytes for humans and line-oriented output: valid UTF-8 stays as it
 * is; a backslash, control characters (tab, newline, ...) and bytes that are not valid UTF-8
 * become C-style escapes ({@code \\}, {@code \t}, {@code \n}, {@code \xff}), so that one name
 * is always one line and the bytes can be recovered.
 */
public final class Display {
    private Display() {
    }

    public static String escape(byte[] bytes) {
        if (isPlain(bytes)) {
            return new String(bytes, StandardCharsets.ISO_8859_1);
        }
        StringBuilder out = new StringBuilder(bytes.length + 8);
        int i = 0;
        while (i < bytes.length) {
            int b = bytes[i] & 0xff;
            if (b < 0x80) {
                appendAscii(out, b);
                i++;
                continue;
            }
            int len = utf8Length(bytes, i);
            if (len == 0) {
                out.append(String.format("\\x%02x", b));
                i++;
            } else {
                String ch = new String(bytes, i, len, StandardCharsets.UTF_8);
                int cp = ch.codePointAt(0);
                if (Character.isISOControl(cp) || cp == 0x2028 || cp == 0x2029) {
                    for (int k = 0; k < len; k++) {
                        out.append(String.format("\\x%02x", bytes[i + k] & 0xff));
                    }
                } else {
                    out.append(ch);
                }
                i += len;
            }
        }
        return out.toString();
    }

    private static boolean isPlain(byte[] bytes) {
        for (byte b : bytes) {
            if (b < 0x20 || b == 0x7f || b == '\\') {
                return false; // also catches every byte >= 0x80 (negative)
            }
        }
        return true;
    }

    private static void appendAscii(StringBuilder out, int b) {
        switch (b) {
            case '\\' -> out.append("\\\\");
            case '\t' -> out.append("\\t");
            case '\n' -> out.append("\\n");
            case '\r' -> out.append("\\r");
            default -> {
                if (b < 0x20 || b == 0x7f) {
                    out.append(String.format("\\x%02x", b));
                } else {
                    out.append((char) b);
                }
            }
        }
    }

    /** Length of the valid UTF-8 sequence starting at {@code i} (non-ASCII lead), or 0 if invalid. */
    private static int utf8Length(byte[] bytes, int i) {
        int b = bytes[i] & 0xff;
        int len = b >= 0xf0 && b <= 0xf4 ? 4 : b >= 0xe0 ? 3 : b >= 0xc2 && b < 0xe0 ? 2 : 0;
        if (len == 0 || i + len > bytes.length) {
            return 0;
        }
        CharsetDecoder decoder = StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT).onUnmappableCharacter(CodingErrorAction.REPORT);
        try {
            CharBuffer ignored = decoder.decode(ByteBuffer.wrap(bytes, i, len));
            return len;
        } catch (CharacterCodingException e) {
            return 0;
        }
    }
}
