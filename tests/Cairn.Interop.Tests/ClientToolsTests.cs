using Cairn.Interop.Tests.Infrastructure;

namespace Cairn.Interop.Tests;

/// <summary>A missing client makes the tests that use it fail with a message naming it and its package, never skip.</summary>
public sealed class ClientToolsTests
{
    [Fact]
    public void A_client_missing_from_PATH_is_named_with_its_package()
    {
        var empty = Directory.CreateTempSubdirectory("cairn-empty-path-");
        try
        {
            Assert.Equal("kcat is not installed (apt-get install kcat; bash test.sh installs it)",
                ClientTools.ExecutableProblem("kcat", "kcat", empty.FullName));
            Assert.Equal("node is not installed (apt-get install nodejs; bash test.sh installs it)",
                ClientTools.ExecutableProblem("node", "nodejs", empty.FullName));
        }
        finally
        {
            empty.Delete(recursive: true);
        }
    }

    [Fact]
    public void The_clients_the_suite_drives_are_installed_here()
    {
        var path = Environment.GetEnvironmentVariable("PATH");
        Assert.Null(ClientTools.ExecutableProblem("kcat", "kcat", path));
        Assert.Null(ClientTools.ExecutableProblem("node", "nodejs", path));
        Assert.Null(ClientTools.PythonModuleProblem(Paths.Python, "kafka", "kafka-python", "python3-kafka"));
        Assert.Null(ClientTools.PythonModuleProblem(Paths.Python, "confluent_kafka", "confluent-kafka", "python3-confluent-kafka"));
    }

    [Fact]
    public void A_python_module_that_does_not_import_is_named_with_its_package()
    {
        var problem = ClientTools.PythonModuleProblem(Paths.Python, "cairn_no_such_module", "some-client", "python3-some-client");
        Assert.NotNull(problem);
        Assert.StartsWith("some-client (python module cairn_no_such_module for /usr/bin/python3) is not installed (apt-get install python3-some-client", problem);
        Assert.Contains("ModuleNotFoundError", problem);
    }

    [Fact]
    public async Task Starting_a_missing_client_fails_with_its_name()
    {
        // A script under clients/node needs node_modules/kafkajs; an unknown executable fails as before (start error).
        var e = await Assert.ThrowsAsync<ExternalCommandException>(() => ChildProcess.RunAsync("cairn-no-such-client", [], TimeSpan.FromSeconds(10)));
        Assert.Contains("cairn-no-such-client", e.Message);
        Assert.Contains("Is it installed?", e.Message);
    }
}
