package castore.fuse.transport;

import java.io.IOException;
import java.math.BigInteger;
import java.nio.file.Files;
import java.nio.file.Path;

/** The CPUs this process may run on (its affinity mask, as taskset and cpusets set it). */
final class CpuSet {
    private CpuSet() {
    }

    /** How many CPUs the process may run on, from /proc/self/status; the JVM's count if that cannot be read. */
    static int allowedCpus() {
        try {
            return allowedCpus(Files.readString(Path.of("/proc/self/status")));
        } catch (IOException | RuntimeException e) {
            return Runtime.getRuntime().availableProcessors();
        }
    }

    /** The count in a /proc/PID/status text: bits set in {@code Cpus_allowed} (hex words, comma separated). */
    static int allowedCpus(String status) {
        for (String line : status.split("\n")) {
            if (line.startsWith("Cpus_allowed:")) {
                String mask = line.substring("Cpus_allowed:".length()).strip().replace(",", "");
                int count = new BigInteger(mask, 16).bitCount();
                if (count > 0) {
                    return count;
                }
            }
        }
        throw new IllegalArgumentException("no Cpus_allowed line");
    }
}
