package castore.bench;

import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import org.openjdk.jmh.annotations.AuxCounters;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

/**
 * CPU seconds the benchmark thread used per iteration, reported next to the score, so
 * throughput per core can be computed on a machine shared with other work (wall-clock
 * scores then understate it): MB per CPU second = ops x bytes / cpuSeconds.
 */
@State(Scope.Thread)
@AuxCounters(AuxCounters.Type.EVENTS)
public class CpuTime {
    private static final ThreadMXBean THREADS = ManagementFactory.getThreadMXBean();

    /** CPU seconds of the iteration. */
    public double cpuSeconds;
    /** Operations of the iteration, counted by the benchmark. */
    public long operations;
    private long start;

    @Setup(Level.Iteration)
    public void start() {
        cpuSeconds = 0;
        operations = 0;
        start = THREADS.getCurrentThreadCpuTime();
    }

    @TearDown(Level.Iteration)
    public void stop() {
        cpuSeconds = (THREADS.getCurrentThreadCpuTime() - start) / 1e9;
    }
}
