package castore.fs;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.Test;

class FetchLatencyTest {
    @Test
    void oneSlowAccessSwitchesHandOffsOnAndARunOfFastOnesOff() throws Exception {
        var latency = new FetchLatency();
        assertThat(latency.slow()).isFalse();
        assertThat(latency.time(() -> "fast")).isEqualTo("fast");
        assertThat(latency.slow()).isFalse();
        assertThatThrownBy(() -> latency.time(() -> {
            LockSupport.parkNanos(20 * FetchLatency.SLOW_NANOS);
            throw new IOException("timed out");
        })).hasMessage("timed out");
        assertThat(latency.slow()).as("failures count").isTrue();
        for (int i = 0; i < 40 && latency.slow(); i++) {
            latency.time(() -> null);
        }
        assertThat(latency.slow()).isFalse();
    }
}
