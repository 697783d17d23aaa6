package castore.cli;

import java.io.IOException;
import java.nio.charset.Charset;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;

/**
 * Recovers the bytes of command-line arguments. The JVM decodes argv with the platform
 * encoding and replaces what does not decode, so a file name with non-UTF-8 bytes would be lost;
 * /proc/self/cmdline still has the bytes. The program arguments are its last entries.
 */
final class RawArguments {
    private RawArguments() {
    }

    /** Stands for an argument that two different byte strings on the command line decode to. */
    static final byte[] AMBIGUOUS = new byte[0];

    /**
     * Decoded argument -> raw bytes, for the arguments whose bytes differ from their UTF-8 form;
     * {@link #AMBIGUOUS} for one that stands for several.
     */
    static Map<String, byte[]> recover(String[] args) {
        byte[] cmdline;
        try {
            cmdline = Files.readAllBytes(Path.of("/proc/self/cmdline"));
        } catch (IOException | UnsupportedOperationException e) {
            return Map.of();
        }
        return match(args, split(cmdline), Charset.forName(System.getProperty("sun.jnu.encoding", "UTF-8")));
    }

    static Map<String, byte[]> match(String[] args, byte[][] entries, Charset platform) {
        if (entries.length < args.length) {
            return Map.of();
        }
        byte[][] tail = Arrays.copyOfRange(entries, entries.length - args.length, entries.length);
        Map<String, byte[]> raw = new HashMap<>();
        Set<String> ambiguous = new HashSet<>();
        for (int i = 0; i < args.length; i++) {
            if (!new String(tail[i], platform).equals(args[i])) {
                return Map.of(); // not the layout we expect: trust nothing
            }
            put(raw, ambiguous, args[i], tail[i]);
            int eq = args[i].indexOf('=');
            if (args[i].startsWith("--") && eq > 0) {
                // picocli hands the command only VALUE of --option=VALUE: map that too. The
                // option name is ASCII, so the first '=' byte is the same place.
                int rawEq = indexOf(tail[i], (byte) '=');
                put(raw, ambiguous, args[i].substring(eq + 1), Arrays.copyOfRange(tail[i], rawEq + 1, tail[i].length));
            }
        }
        raw.entrySet().removeIf(e -> Arrays.equals(e.getValue(), e.getKey().getBytes(StandardCharsets.UTF_8)));
        // Marked, not dropped: dropped, its UTF-8 form (U+FFFD) would name a third file.
        ambiguous.forEach(a -> raw.put(a, AMBIGUOUS));
        return Map.copyOf(raw);
    }

    private static void put(Map<String, byte[]> raw, Set<String> ambiguous, String decoded, byte[] bytes) {
        byte[] previous = raw.putIfAbsent(decoded, bytes);
        if (previous != null && !Arrays.equals(previous, bytes)) {
            ambiguous.add(decoded); // two byte strings decode alike: neither can be told apart
        }
    }

    private static int indexOf(byte[] bytes, byte b) {
        for (int i = 0; i < bytes.length; i++) {
            if (bytes[i] == b) {
                return i;
            }
        }
        return -1;
    }

    private static byte[][] split(byte[] cmdline) {
        int count = 0;
        for (byte b : cmdline) {
            if (b == 0) {
                count++;
            }
        }
        byte[][] out = new byte[count][];
        int start = 0;
        int k = 0;
        for (int i = 0; i < cmdline.length; i++) {
            if (cmdline[i] == 0) {
                out[k++] = Arrays.copyOfRange(cmdline, start, i);
                start = i + 1;
            }
        }
        return out;
    }
}
