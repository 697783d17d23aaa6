package castore.io;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/**
 * A lowered background thread that starts a virtual thread must not give the scheduler a carrier
 * at its own priority. Each case runs in a fresh JVM, whose scheduler has no carrier yet.
 */
class LowPriorityTest {

    @Test
    void aVirtualThreadStartedByALoweredThreadRunsAtNormalPriority() throws Exception {
        assertThat(carrierNiceInAFreshJvm("low-priority")).isEqualTo(0);
    }

    @Test
    void withoutItTheCarrierWouldTakeTheLoweredThreadsNiceValue() throws Exception {
        // The hazard LowPriority exists for: Linux gives a new thread its creator's nice value.
        assertThat(carrierNiceInAFreshJvm("libc")).isEqualTo(19);
    }

    private static int carrierNiceInAFreshJvm(String how) throws Exception {
        ProcessBuilder pb = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--enable-native-access=ALL-UNNAMED", "-Djdk.virtualThreadScheduler.parallelism=2",
                "-cp", System.getProperty("java.class.path"), Child.class.getName(), how);
        pb.redirectErrorStream(true);
        Process p = pb.start();
        String out = new String(p.getInputStream().readAllBytes()).strip();
        assertThat(p.waitFor(60, TimeUnit.SECONDS)).isTrue();
        assertThat(p.exitValue()).as(out).isZero();
        return Integer.parseInt(out);
    }

    /** Lowers a platform thread one way or the other, then prints the nice value of a virtual thread's carrier it starts. */
    public static final class Child {
        public static void main(String[] args) throws Exception {
            AtomicInteger carrierNice = new AtomicInteger(-100);
            Thread background = Thread.ofPlatform().start(() -> {
                if (args[0].equals("libc")) {
                    Libc.lowerCurrentThreadPriority();
                } else {
                    LowPriority.lowerCurrentThread();
                    LowPriority.beforeWork();
                }
                try {
                    Thread.ofVirtual().start(() -> {
                        try {
                            carrierNice.set(LibcPriorityTest.niceOfThisThread()); // the carrier's: /proc/thread-self
                        } catch (Exception e) {
                            throw new RuntimeException(e);
                        }
                    }).join();
                } catch (InterruptedException e) {
                    throw new RuntimeException(e);
                }
            });
            background.join();
            System.out.println(carrierNice.get());
        }
    }
}
