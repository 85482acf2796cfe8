"""A model saved from a script loads anywhere: by its class passed in (Keras' custom_objects), by importing its
module, or as weights only into a model built in code (PyTorch's state_dict way); the CLI says which it needs."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest
from click.testing import CliRunner

import descend as dc
from descend import nn
from descend.cli import main
from descend.errors import DescendTypeError, ModelFileError

#: a user's script: its model class lives in __main__ while it runs
SCRIPT = textwrap.dedent('''
    import sys
    import descend as dc
    from descend import nn

    @nn.register_function
    def swish(x):
        return x * dc.sigmoid(x)

    class Net(nn.Module):
        def __init__(self, features=4, activation=swish):
            self.hidden = nn.Linear(features, 8, rng=0)
            self.out = nn.Linear(8, 3, rng=1)
            self.activation = activation

        def forward(self, x):
            return self.out(self.activation(self.hidden(x)))

    if __name__ == "__main__":
        dc.save(Net(), sys.argv[1])
        dc.save_weights(Net(), sys.argv[2])
''')


@pytest.fixture
def saved_from_a_script(tmp_path):
    """(folder, model file, weights file) written by running the user's script as __main__."""
    (tmp_path / "netdef.py").write_text(SCRIPT)
    model_file, weights_file = tmp_path / "net.dsc", tmp_path / "net.weights"
    subprocess.run([sys.executable, str(tmp_path / "netdef.py"), str(model_file), str(weights_file)], check=True)
    return tmp_path, model_file, weights_file


def _run(folder, code):
    """Run `code` in a fresh interpreter inside `folder` (so `import netdef` finds the user's module)."""
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=folder, capture_output=True, text=True)
    return done.returncode, done.stdout + done.stderr


def test_a_script_model_without_its_class_is_refused_with_both_fixes(saved_from_a_script):
    folder, model_file, _ = saved_from_a_script
    code, output = _run(folder, f"import descend as dc; dc.load({str(model_file)!r})")
    assert code != 0
    assert "unknown module class '__main__.Net'" in output
    assert "dc.load(path, custom_objects={'Net': Net})" in output and "dc.load_weights(model, path)" in output


def test_custom_objects_and_importing_the_module_both_load_it(saved_from_a_script):
    folder, model_file, _ = saved_from_a_script
    code, output = _run(folder, f"""
        import numpy as np, descend as dc
        from netdef import Net, swish
        expected = Net()(dc.tensor(np.ones((2, 4), np.float32))).data
        for model in (dc.load({str(model_file)!r}, custom_objects={{"Net": Net}}), dc.load({str(model_file)!r})):
            assert type(model) is Net and model.activation is swish
            np.testing.assert_array_equal(model(dc.tensor(np.ones((2, 4), np.float32))).data, expected)
        print("loaded both ways")
    """)
    assert code == 0 and "loaded both ways" in output, output


def test_weights_only_load_into_a_model_built_in_code(saved_from_a_script):
    folder, _, weights_file = saved_from_a_script
    code, output = _run(folder, f"""
        import numpy as np, descend as dc
        from netdef import Net
        model = Net()
        model.hidden.weight.data[...] = 0  # changed, so only the file can bring the values back
        dc.load_weights(model, {str(weights_file)!r})
        np.testing.assert_array_equal(model.state_dict()["hidden.weight"], Net().state_dict()["hidden.weight"])
        print("weights in")
    """)
    assert code == 0 and "weights in" in output, output


def test_a_weights_file_is_plain_safetensors_with_state_dict_names(tmp_path):
    from safetensors.numpy import load_file

    model = nn.MLP([3, 5, 2], rng=0)
    dc.save_weights(model, tmp_path / "mlp.weights")
    on_disk = load_file(tmp_path / "mlp.weights")
    assert set(on_disk) == set(model.state_dict())
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(on_disk[name], value)


def test_load_weights_takes_a_whole_model_file_too_and_load_state_dict_plain_names(tmp_path):
    source, target = nn.MLP([3, 5, 2], rng=0), nn.MLP([3, 5, 2], rng=1)
    dc.load_weights(target, dc.save(source, tmp_path / "mlp.dsc"))
    np.testing.assert_array_equal(target.flat_buffer().data, source.flat_buffer().data)
    other = nn.MLP([3, 5, 2], rng=2)
    other.load_state_dict(source.state_dict())
    np.testing.assert_array_equal(other.flat_buffer().data, source.flat_buffer().data)


def test_weights_that_do_not_fit_name_the_array_and_both_shapes(tmp_path):
    dc.save_weights(nn.MLP([3, 5, 2], rng=0), tmp_path / "mlp.weights")
    with pytest.raises(ModelFileError, match=r"its weights do not fit MLP: state 'network.layers.0.weight' has "
                                             r"shape \(3, 5\); the model expects \(4, 5\)"):
        dc.load_weights(nn.MLP([4, 5, 2]), tmp_path / "mlp.weights")


def test_load_refuses_a_weights_file_and_says_what_it_needs(tmp_path):
    dc.save_weights(nn.MLP([3, 5, 2], rng=0), tmp_path / "mlp.weights")
    with pytest.raises(ModelFileError, match=r"holds only weights .* build the model in code \(MLP\(\.\.\.\)\), "
                                             r"then dc.load_weights\(model, path\)"):
        dc.load(tmp_path / "mlp.weights")


@pytest.mark.parametrize("custom_objects, words", [
    ([nn.MLP], "custom_objects must map names to classes or functions, e.g. {'Net': Net}; got list"),
    ({"Net": 3}, "custom_objects['Net'] must be a Module subclass or a function; got int 3"),
    ({"Net": int}, "custom_objects['Net'] must be a Module subclass or a function; got type"),
])
def test_bad_custom_objects_are_named_before_the_file_is_read(tmp_path, custom_objects, words):
    with pytest.raises(DescendTypeError, match=None) as caught:
        dc.load(tmp_path / "not-even-there.dsc", custom_objects=custom_objects)
    assert words in str(caught.value)


def test_descend_predict_says_which_way_a_file_needs_loading(saved_from_a_script):
    folder, model_file, weights_file = saved_from_a_script
    rows = folder / "rows.csv"
    rows.write_text("1,2,3,4\n")
    result = CliRunner().invoke(main, ["predict", str(model_file), str(rows)])
    assert result.exit_code != 0
    assert "holds a model of your own class '__main__.Net'" in result.output
    assert "dc.load(path, custom_objects={'Net': Net})" in result.output
    result = CliRunner().invoke(main, ["predict", str(weights_file), str(rows)])
    assert result.exit_code != 0
    assert "holds only weights (dc.save_weights)" in result.output and "dc.load_weights(model, path)" in result.output
