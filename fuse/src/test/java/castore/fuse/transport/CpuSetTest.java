package castore.fuse.transport;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class CpuSetTest {
    @Test
    void countsTheBitsOfTheAffinityMask() {
        assertThat(CpuSet.allowedCpus("Name:\tjava\nCpus_allowed:\t3\nCpus_allowed_list:\t0-1\n")).isEqualTo(2);
        assertThat(CpuSet.allowedCpus("Cpus_allowed:\t1\n")).isEqualTo(1);
        // Machines with more than 32 CPUs print the mask in comma-separated 32-bit words.
        assertThat(CpuSet.allowedCpus("Cpus_allowed:\tffffffff,ffffffff,00000010\n")).isEqualTo(65);
    }

    @Test
    void aStatusWithoutAMaskIsAnError() {
        assertThatThrownBy(() -> CpuSet.allowedCpus("Name:\tjava\n")).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void thisProcessMayRunOnAtLeastOneCpu() {
        assertThat(CpuSet.allowedCpus()).isBetween(1, Runtime.getRuntime().availableProcessors() + 1024);
    }
}
