package castore.io;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

public class LibcPriorityTest {

    /** The nice value of the calling thread, from /proc/thread-self/stat (field 19). */
    public static int niceOfThisThread() throws Exception {
        String stat = Files.readString(Path.of("/proc/thread-self/stat"));
        String[] fields = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
        return Integer.parseInt(fields[19 - 3]);
    }

    @Test
    void lowersOnlyTheCallingThread() throws Exception {
        int before = niceOfThisThread();
        var lowered = new AtomicReference<Integer>();
        var failure = new AtomicReference<Throwable>();
        Thread worker = Thread.ofPlatform().start(() -> {
            try {
                Libc.lowerCurrentThreadPriority();
                lowered.set(niceOfThisThread());
            } catch (Throwable t) {
                failure.set(t);
            }
        });
        worker.join();
        assertThat(failure.get()).isNull();
        assertThat(lowered.get()).isEqualTo(19);
        assertThat(niceOfThisThread()).as("the caller's thread is untouched").isEqualTo(before);
    }
}
