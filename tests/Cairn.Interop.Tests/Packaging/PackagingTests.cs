using Cairn.Interop.Tests.Infrastructure;

namespace Cairn.Interop.Tests.Packaging;

/// <summary>
/// README "Installing cairn", the .NET tool way: `dotnet pack src/Cairn.Cli` makes a tool package that
/// `dotnet tool install` accepts and whose `cairn` command runs. Installs into a temporary --tool-path (not ~/.dotnet/tools)
/// from a NuGet config listing only the freshly packed directory, so no other `cairn` package can stand in for it.
/// Packs the Release build that the suite already made (--no-build): about 10-40 s on the 2-core machine.
/// </summary>
public sealed class PackagingTests
{
    [Fact]
    public async Task The_tool_package_installs_and_cairn_runs()
    {
        Assert.True(File.Exists(Paths.CairnDll), $"no Release build at {Paths.CairnDll}: build first (`dotnet build Cairn.slnx -c Release`)");
        var work = Directory.CreateTempSubdirectory("cairn-pack-").FullName;
        try
        {
            var packages = Path.Combine(work, "artifacts");
            var tools = Path.Combine(work, "tools");
            var project = Path.Combine(Paths.RepoRoot, "src", "Cairn.Cli", "Cairn.Cli.csproj");
            await ChildProcess.RunCheckedAsync(Paths.DotnetHost,
                ["pack", project, "-c", "Release", "--no-build", "-o", packages, "-nologo"], TimeSpan.FromMinutes(3));
            var package = Assert.Single(Directory.GetFiles(packages, "cairn.*.nupkg"));

            var config = Path.Combine(work, "nuget.config");
            await File.WriteAllTextAsync(config, $"""
                <?xml version="1.0" encoding="utf-8"?>
                <configuration>
                  <packageSources>
                    <clear />
                    <add key="packed" value="{packages}" />
                  </packageSources>
                </configuration>
                """);
            var install = await ChildProcess.RunCheckedAsync(Paths.DotnetHost,
                ["tool", "install", "--tool-path", tools, "--configfile", config, "cairn"], TimeSpan.FromMinutes(2));
            Assert.Contains("successfully installed", install.Stdout, StringComparison.OrdinalIgnoreCase);

            var installed = Path.Combine(tools, "cairn");
            Assert.True(File.Exists(installed), $"`dotnet tool install` left no {installed} (package {Path.GetFileName(package)}). {install.Describe()}");
            var version = await ChildProcess.RunCheckedAsync(installed, ["--version"], TimeSpan.FromSeconds(30));
            var built = await ChildProcess.RunCheckedAsync(Paths.DotnetHost, [Paths.CairnDll, "--version"], TimeSpan.FromSeconds(30));
            Assert.False(string.IsNullOrWhiteSpace(version.Stdout), version.Describe());
            Assert.Equal(built.Stdout.Trim(), version.Stdout.Trim()); // the package holds this build
        }
        finally
        {
            try { Directory.Delete(work, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }
}
